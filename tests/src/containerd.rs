//! [`ContainerdHost`]: one scratch containerd serving the CRI, standing in
//! for one Kubernetes node; the tests drive it as the kubelet does.
//!
//! Everything is under one temp dir: root, state, runc root, config and the
//! socket (shims still put theirs under `/run/containerd/s`, which
//! containerd chooses; they go when the shims do). The settings that make it
//! run here (docs/reliability.md): the `native` snapshotter, runc without
//! systemd cgroups, no AppArmor, a restricted OOM score, no CNI (pods share
//! the host network and have no hostname), and a pause image made from
//! busybox on a [`DockerHost`] and imported offline. Images come from the
//! fleet's [`Registry`], so they carry the same repo digests as on Docker
//! hosts. Dropping the host stops its pods, then containerd, its shims and
//! its containers by pid.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use envparity_cri::channel::connect_unix;
use envparity_cri::runtime_v1::image_service_client::ImageServiceClient;
use envparity_cri::runtime_v1::runtime_service_client::RuntimeServiceClient;
use envparity_cri::runtime_v1::{
    ContainerConfig, ContainerMetadata, CreateContainerRequest, ImageSpec, KeyValue,
    LinuxContainerConfig, LinuxContainerSecurityContext, LinuxPodSandboxConfig,
    LinuxSandboxSecurityContext, NamespaceMode, NamespaceOption, PodSandboxConfig,
    PodSandboxMetadata, PodSandboxStatusRequest, PortMapping, PullImageRequest,
    RemovePodSandboxRequest, RunPodSandboxRequest, StartContainerRequest, StopPodSandboxRequest,
    VersionRequest,
};
use tonic::transport::Channel;

use crate::command;
use crate::docker_host::DockerHost;
use crate::error::{Error, Result};
use crate::image::ImageSpec as BuildSpec;
use crate::pids;
use crate::process::Process;
use crate::scratch::ScratchDir;
use crate::tools::Tool;
use crate::wait::wait_for;

/// containerd, as Debian's `docker.io` brings it (1.6).
pub const CONTAINERD: Tool = Tool {
    name: "containerd",
    path: "/usr/bin/containerd",
    package: "containerd",
};

/// containerd's client, to import the pause image.
pub const CTR: Tool = Tool {
    name: "ctr",
    path: "/usr/bin/ctr",
    package: "containerd",
};

/// The pause image's name once imported.
const PAUSE_IMAGE: &str = "docker.io/envparity/pause:1";

/// How long containerd may take until its CRI answers.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a CRI call may take (a pull from the local registry is fast).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// A pod as the tests ask for it: the kubelet's labels and env are added.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct Pod {
    name: String,
    namespace: String,
    labels: Vec<(String, String)>,
    ports: Vec<(i32, i32)>,
    containers: Vec<PodContainer>,
}

/// One container of a [`Pod`].
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct PodContainer {
    name: String,
    image: String,
    env: Vec<(String, String)>,
    args: Vec<String>,
}

impl Pod {
    /// A pod `name` in namespace `namespace`.
    pub fn new(namespace: &str, name: &str) -> Self {
        Self {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            ..Self::default()
        }
    }

    /// A pod label (they live on the sandbox, as Kubernetes puts them).
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.push((key.to_owned(), value.to_owned()));
        self
    }

    /// A TCP port of the pod's containers, mapped to `host_port` on the node
    /// (0: not mapped), as the kubelet passes it in the sandbox's config.
    pub fn port(mut self, container_port: i32, host_port: i32) -> Self {
        self.ports.push((container_port, host_port));
        self
    }

    /// A container.
    pub fn container(mut self, container: PodContainer) -> Self {
        self.containers.push(container);
        self
    }
}

impl PodContainer {
    /// Container `name` running `image` (pulled first if need be).
    pub fn new(name: &str, image: &str) -> Self {
        Self {
            name: name.to_owned(),
            image: image.to_owned(),
            ..Self::default()
        }
    }

    /// An env entry of the pod spec.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The pod spec's `args` (the image's entrypoint stays).
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args = args.iter().map(|a| (*a).to_owned()).collect();
        self
    }
}

/// A started pod: its sandbox and container ids.
#[derive(Debug, Clone)]
pub struct RunningPod {
    /// The sandbox.
    pub sandbox_id: String,
    /// The containers, in the order asked.
    pub container_ids: Vec<String>,
}

/// A running scratch containerd with its CRI.
#[derive(Debug)]
pub struct ContainerdHost {
    name: String,
    socket: PathBuf,
    registry: String,
    containerd: Option<Process>,
    pods: Vec<String>,
    rt: tokio::runtime::Runtime,
    dir: ScratchDir,
}

impl ContainerdHost {
    /// Starts a node `parent/name` that pulls from the registry at
    /// `registry` (`127.0.0.1:PORT`), with the pause image built on
    /// `builder`.
    pub fn start_in(
        parent: &Path,
        name: &str,
        registry: &str,
        builder: &DockerHost,
    ) -> Result<Self> {
        CONTAINERD.require()?;
        CTR.require()?;
        let dir = ScratchDir::child(parent, name)?;
        let root = dir.path().to_path_buf();
        for sub in ["root", "state", "runc", "tmp", "opt"] {
            let path = root.join(sub);
            std::fs::create_dir(&path).map_err(Error::io(format!("create {}", path.display())))?;
        }
        let socket = root.join("c.sock");
        let config = root.join("config.toml");
        std::fs::write(&config, config_toml(&root, &socket, registry))
            .map_err(Error::io(format!("write {}", config.display())))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::io("start a tokio runtime for the CRI client"))?;
        let mut host = Self {
            name: name.to_owned(),
            socket,
            registry: registry.to_owned(),
            containerd: None,
            pods: Vec::new(),
            rt,
            dir,
        };
        host.spawn()?;
        host.import_pause(builder)?;
        Ok(host)
    }

    fn spawn(&mut self) -> Result<()> {
        let root = self.dir.path().to_path_buf();
        let mut containerd = Command::new(CONTAINERD.path);
        containerd
            .env("TMPDIR", root.join("tmp"))
            .arg("--config")
            .arg(root.join("config.toml"));
        let process = Process::spawn(
            format!("containerd {}", self.name),
            containerd,
            root.join("containerd.log"),
        )?
        .with_stop_timeout(Duration::from_secs(10));
        self.containerd = Some(process);
        let what = format!("containerd {} to answer the CRI's Version", self.name);
        let socket = self.socket.clone();
        let containerd = self.containerd.as_mut().expect("just set");
        let rt = &self.rt;
        wait_for(START_TIMEOUT, what, || {
            containerd.ensure_running()?;
            let answered = rt.block_on(async {
                let channel = connect_unix(
                    &socket,
                    Duration::from_secs(2),
                    Some(Duration::from_secs(2)),
                )
                .await
                .ok()?;
                RuntimeServiceClient::new(channel)
                    .version(VersionRequest {
                        version: "v1".to_owned(),
                    })
                    .await
                    .ok()
            });
            Ok(answered.map(drop))
        })
    }

    /// Builds the pause image (busybox `sleep`) on `builder`, saves it and
    /// imports it into the CRI's namespace.
    fn import_pause(&self, builder: &DockerHost) -> Result<()> {
        builder.import_image(
            "envparity/pause:1",
            BuildSpec::new().cmd(&["/bin/sleep", "2147483647"]),
        )?;
        let tar = self.dir.path().join("pause.tar");
        builder.docker([
            "save",
            "-o",
            &tar.display().to_string(),
            "envparity/pause:1",
        ])?;
        let mut ctr = Command::new(CTR.path);
        ctr.arg("--address")
            .arg(&self.socket)
            .args([
                "-n",
                "k8s.io",
                "images",
                "import",
                "--snapshotter",
                "native",
            ])
            .arg(&tar);
        command::checked(ctr).map(drop)
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The CRI socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// containerd's pid.
    pub fn pid(&self) -> u32 {
        self.containerd.as_ref().map_or(0, Process::pid)
    }

    /// Its log.
    pub fn log(&self) -> String {
        self.containerd
            .as_ref()
            .map(Process::log)
            .unwrap_or_default()
    }

    async fn channel(socket: &Path) -> Result<Channel> {
        connect_unix(socket, CALL_TIMEOUT, Some(CALL_TIMEOUT))
            .await
            .map_err(|e| Error::unexpected("connect to the CRI", e.to_string()))
    }

    fn call<T>(
        &self,
        what: &str,
        f: impl AsyncFnOnce(Channel) -> std::result::Result<T, tonic::Status>,
    ) -> Result<T> {
        let socket = self.socket.clone();
        self.rt.block_on(async move {
            let channel = Self::channel(&socket).await?;
            f(channel)
                .await
                .map_err(|status| Error::unexpected(what.to_owned(), status.to_string()))
        })
    }

    /// Pulls `image` (a reference into the fleet's registry) as the kubelet
    /// does before creating a container.
    pub fn pull(&self, image: &str) -> Result<String> {
        let image = image.to_owned();
        self.call(&format!("pull {image}"), async move |channel| {
            Ok(ImageServiceClient::new(channel)
                .pull_image(PullImageRequest {
                    image: Some(spec(&image)),
                    sandbox_config: None,
                })
                .await?
                .into_inner()
                .image_ref)
        })
    }

    /// Runs `pod` as the kubelet would: sandbox (host network, no hostname),
    /// then each container pulled, created and started, with the kubelet's
    /// labels and the service-link env of the `kubernetes` service.
    pub fn run_pod(&mut self, pod: Pod) -> Result<RunningPod> {
        for c in &pod.containers {
            self.pull(&c.image)?;
        }
        let uid = format!("uid-{}-{}", pod.namespace, pod.name);
        let sandbox_config = PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: pod.name.clone(),
                uid: uid.clone(),
                namespace: pod.namespace.clone(),
                attempt: 0,
            }),
            hostname: String::new(),
            log_directory: self
                .dir
                .path()
                .join("logs")
                .join(&uid)
                .display()
                .to_string(),
            port_mappings: pod
                .ports
                .iter()
                .map(|&(container_port, host_port)| PortMapping {
                    protocol: 0,
                    container_port,
                    host_port,
                    host_ip: String::new(),
                })
                .collect(),
            labels: pod
                .labels
                .iter()
                .cloned()
                .chain([
                    ("io.kubernetes.pod.name".to_owned(), pod.name.clone()),
                    (
                        "io.kubernetes.pod.namespace".to_owned(),
                        pod.namespace.clone(),
                    ),
                    ("io.kubernetes.pod.uid".to_owned(), uid.clone()),
                ])
                .collect(),
            annotations: HashMap::new(),
            linux: Some(LinuxPodSandboxConfig {
                cgroup_parent: String::new(),
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(host_network()),
                }),
            }),
        };
        let sandbox_id = {
            let config = sandbox_config.clone();
            self.call(&format!("run pod {}", pod.name), async move |channel| {
                Ok(RuntimeServiceClient::new(channel)
                    .run_pod_sandbox(RunPodSandboxRequest {
                        config: Some(config),
                        runtime_handler: String::new(),
                    })
                    .await?
                    .into_inner()
                    .pod_sandbox_id)
            })?
        };
        self.pods.push(sandbox_id.clone());
        let mut container_ids = Vec::new();
        for c in pod.containers {
            let mut envs: Vec<KeyValue> = c
                .env
                .iter()
                .map(|(k, v)| KeyValue {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect();
            envs.extend(service_links());
            let config = ContainerConfig {
                metadata: Some(ContainerMetadata {
                    name: c.name.clone(),
                    attempt: 0,
                }),
                image: Some(spec(&c.image)),
                command: Vec::new(),
                args: c.args.clone(),
                working_dir: String::new(),
                envs,
                mounts: Vec::new(),
                labels: HashMap::from([
                    ("io.kubernetes.container.name".to_owned(), c.name.clone()),
                    ("io.kubernetes.pod.name".to_owned(), pod.name.clone()),
                    (
                        "io.kubernetes.pod.namespace".to_owned(),
                        pod.namespace.clone(),
                    ),
                    ("io.kubernetes.pod.uid".to_owned(), uid.clone()),
                ]),
                annotations: HashMap::new(),
                log_path: format!("{}.log", c.name),
                linux: Some(LinuxContainerConfig {
                    security_context: Some(LinuxContainerSecurityContext {
                        namespace_options: Some(host_network()),
                        ..Default::default()
                    }),
                }),
            };
            let request = CreateContainerRequest {
                pod_sandbox_id: sandbox_id.clone(),
                config: Some(config),
                sandbox_config: Some(sandbox_config.clone()),
            };
            let id = self.call(
                &format!("create container {}", c.name),
                async move |channel| {
                    let mut client = RuntimeServiceClient::new(channel);
                    let id = client
                        .create_container(request)
                        .await?
                        .into_inner()
                        .container_id;
                    client
                        .start_container(StartContainerRequest {
                            container_id: id.clone(),
                        })
                        .await?;
                    Ok(id)
                },
            )?;
            container_ids.push(id);
        }
        Ok(RunningPod {
            sandbox_id,
            container_ids,
        })
    }

    /// The verbose `info` of `PodSandboxStatus` for `pod`, as containerd
    /// answers it (key `info`): what the agent's unit tests record.
    pub fn sandbox_status_info(&self, pod: &RunningPod) -> Result<String> {
        let id = pod.sandbox_id.clone();
        self.call(&format!("pod sandbox status {id}"), async move |channel| {
            let answer = RuntimeServiceClient::new(channel)
                .pod_sandbox_status(PodSandboxStatusRequest {
                    pod_sandbox_id: id,
                    verbose: true,
                })
                .await?
                .into_inner();
            Ok(answer.info.get("info").cloned().unwrap_or_default())
        })
    }

    /// Stops and removes a pod, as the kubelet does when it is deleted.
    pub fn remove_pod(&mut self, pod: &RunningPod) -> Result<()> {
        let id = pod.sandbox_id.clone();
        self.pods.retain(|p| *p != id);
        self.call(&format!("remove pod {id}"), async move |channel| {
            let mut client = RuntimeServiceClient::new(channel);
            client
                .stop_pod_sandbox(StopPodSandboxRequest {
                    pod_sandbox_id: id.clone(),
                })
                .await?;
            client
                .remove_pod_sandbox(RemovePodSandboxRequest { pod_sandbox_id: id })
                .await?;
            Ok(())
        })
    }

    /// Stops containerd (SIGTERM) as a restart of its service would: its
    /// shims and containers go on running, as on a real node. Until
    /// [`ContainerdHost::start_engine`] nothing answers on its socket.
    pub fn stop_engine(&mut self) -> Result<()> {
        if let Some(mut containerd) = self.containerd.take() {
            containerd.stop()?;
        }
        Ok(())
    }

    /// Starts containerd again after [`ContainerdHost::stop_engine`], on the
    /// same root and socket, and waits until its CRI answers.
    pub fn start_engine(&mut self) -> Result<()> {
        if self.containerd.is_some() {
            return Err(Error::unexpected(
                format!("start containerd {}", self.name),
                "it is already running; call stop_engine first",
            ));
        }
        self.spawn()
    }

    /// Asks to remove `pod` through `socket` (e.g. an allowlist proxy in
    /// front of this node's CRI): the code the call failed with, or an error
    /// if it went through.
    pub fn remove_pod_code(&self, socket: &Path, pod: &RunningPod) -> Result<tonic::Code> {
        let id = pod.sandbox_id.clone();
        let socket = socket.to_owned();
        self.rt.block_on(async move {
            let channel = Self::channel(&socket).await?;
            match RuntimeServiceClient::new(channel)
                .remove_pod_sandbox(RemovePodSandboxRequest { pod_sandbox_id: id })
                .await
            {
                Ok(_) => Err(Error::unexpected(
                    format!("remove a pod through {}", socket.display()),
                    "the call went through",
                )),
                Err(status) => Ok(status.code()),
            }
        })
    }

    /// The registry it pulls from.
    pub fn registry(&self) -> &str {
        &self.registry
    }
}

impl Drop for ContainerdHost {
    fn drop(&mut self) {
        // The kubelet's way first, so shims exit cleanly and take their
        // sockets under /run/containerd/s with them; the dir's teardown
        // then ends whatever is left by pid.
        for id in std::mem::take(&mut self.pods) {
            let pod = RunningPod {
                sandbox_id: id,
                container_ids: Vec::new(),
            };
            if self.containerd.is_some() {
                let _ = self.remove_pod(&pod);
            }
        }
        if let Some(mut containerd) = self.containerd.take() {
            let _ = containerd.stop();
        }
        let survivors = pids::terminate(
            &pids::processes_under(self.dir.path()),
            Duration::from_secs(5),
        );
        if !survivors.is_empty() {
            eprintln!(
                "envparity-tests: containerd {} left processes that survived SIGKILL: {survivors:?}",
                self.name
            );
        }
    }
}

fn spec(image: &str) -> ImageSpec {
    ImageSpec {
        image: image.to_owned(),
        annotations: HashMap::new(),
    }
}

fn host_network() -> NamespaceOption {
    NamespaceOption {
        network: NamespaceMode::Node as i32,
        pid: NamespaceMode::Container as i32,
        ipc: NamespaceMode::Pod as i32,
    }
}

/// The service-link env the kubelet adds for the `kubernetes` service of
/// every cluster (the cluster IP differs per cluster).
fn service_links() -> Vec<KeyValue> {
    [
        ("KUBERNETES_SERVICE_HOST", "10.96.0.1"),
        ("KUBERNETES_SERVICE_PORT", "443"),
        ("KUBERNETES_SERVICE_PORT_HTTPS", "443"),
        ("KUBERNETES_PORT", "tcp://10.96.0.1:443"),
        ("KUBERNETES_PORT_443_TCP", "tcp://10.96.0.1:443"),
        ("KUBERNETES_PORT_443_TCP_PROTO", "tcp"),
        ("KUBERNETES_PORT_443_TCP_PORT", "443"),
        ("KUBERNETES_PORT_443_TCP_ADDR", "10.96.0.1"),
    ]
    .into_iter()
    .map(|(key, value)| KeyValue {
        key: key.to_owned(),
        value: value.to_owned(),
    })
    .collect()
}

/// containerd's config: everything under `root`, the CRI as measured to
/// work here (docs/reliability.md).
fn config_toml(root: &Path, socket: &Path, registry: &str) -> String {
    let r = root.display();
    format!(
        r#"version = 2
root = "{r}/root"
state = "{r}/state"

[grpc]
  address = "{socket}"

[ttrpc]
  address = "{socket}.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{r}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  disable_apparmor = true
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "native"
  default_runtime_name = "runc"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  BinaryName = "/usr/sbin/runc"
  Root = "{r}/runc"
  SystemdCgroup = false

[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "{r}/cni/bin"
  conf_dir = "{r}/cni/conf"

[plugins."io.containerd.grpc.v1.cri".registry.mirrors."{registry}"]
  endpoint = ["http://{registry}"]
"#,
        socket = socket.display(),
    )
}
