//! envparity proper, end to end: agents watch real engines, the aggregator
//! judges, the CLI's exit code tells (0 parity, 1 drift, 2+ error).
//!
//! Ignored for now: `aggregator` is not yet in the workspace members, so a
//! clean `cargo build --workspace` does not build `envparity`. They pass
//! against the binaries built from the working tree; run them with
//! `cargo build --workspace && cargo test -p envparity-tests --test e2e -- --ignored`,
//! then drop the `#[ignore]`s.

use std::time::Duration;

use envparity_tests::{EXIT_MISMATCH, EXIT_PARITY, Fleet, ImageSpec, Result, Run};

/// Agents register within this time on a loaded 2-core CI machine.
const REPORT_TIMEOUT: Duration = Duration::from_secs(30);

/// Staging and production, each running service `shop` from the same pushed
/// image, with `env` set on production's container only.
fn shop_fleet(production_env: &[(&str, &str)]) -> Result<Fleet> {
    let fleet = Fleet::builder()
        .host("staging")
        .host("production")
        .registry()
        .start()?;
    let (staging, prod) = (fleet.host("staging"), fleet.host("production"));
    let registry = fleet.registry();
    staging.import_image("shop:1", ImageSpec::new().file("/app/version", "1"))?;
    registry.push_from(staging, "shop:1")?;
    registry.pull_to(prod, "shop:1")?;
    let image = registry.reference("shop:1");

    let shop = Run::new(&image)
        .name("shop")
        .label("envparity.service", "shop")
        .env("MODE", "web");
    staging.run(shop.clone())?;
    let prod_shop = production_env
        .iter()
        .fold(shop, |run, (key, value)| run.env(*key, *value));
    prod.run(prod_shop)?;
    Ok(fleet)
}

#[test]
#[ignore = "needs `envparity` built: un-ignore once aggregator is a workspace member"]
fn environments_running_the_same_image_and_config_are_at_parity() -> Result<()> {
    let fleet = shop_fleet(&[])?;
    let _aggregator = fleet.start_aggregator()?;
    let _staging = fleet.start_agent(fleet.host("staging"))?;
    let _prod = fleet.start_agent(fleet.host("production"))?;
    fleet.wait_for_hosts(&["staging", "production"], REPORT_TIMEOUT)?;

    fleet
        .cli(&["diff", "staging", "production"])?
        .assert_code(EXIT_PARITY);
    Ok(())
}

#[test]
#[ignore = "needs `envparity` built: un-ignore once aggregator is a workspace member"]
fn an_env_var_set_only_in_production_is_drift() -> Result<()> {
    let fleet = shop_fleet(&[("FEATURE_FLAG", "on")])?;
    let _aggregator = fleet.start_aggregator()?;
    let _staging = fleet.start_agent(fleet.host("staging"))?;
    let _prod = fleet.start_agent(fleet.host("production"))?;
    fleet.wait_for_hosts(&["staging", "production"], REPORT_TIMEOUT)?;

    let diff = fleet.cli(&["diff", "staging", "production", "--service", "shop"])?;
    diff.assert_code(EXIT_MISMATCH);
    assert!(
        diff.stdout.contains("FEATURE_FLAG"),
        "the finding names the variable: {diff}"
    );
    Ok(())
}

#[test]
#[ignore = "needs `envparity` built: un-ignore once aggregator is a workspace member"]
fn a_different_image_in_production_is_drift() -> Result<()> {
    let fleet = Fleet::builder()
        .host("staging")
        .host("production")
        .registry()
        .start()?;
    let (staging, prod) = (fleet.host("staging"), fleet.host("production"));
    let registry = fleet.registry();
    for (host, version) in [(staging, "1"), (prod, "2")] {
        host.import_image(
            "shop:latest",
            ImageSpec::new().file("/app/version", version),
        )?;
        registry.push_from(host, "shop:latest")?;
        host.run(
            Run::new(registry.reference("shop:latest"))
                .name("shop")
                .label("envparity.service", "shop"),
        )?;
    }
    let _aggregator = fleet.start_aggregator()?;
    let _staging = fleet.start_agent(staging)?;
    let _prod = fleet.start_agent(prod)?;
    fleet.wait_for_hosts(&["staging", "production"], REPORT_TIMEOUT)?;

    fleet
        .cli(&["diff", "staging", "production"])?
        .assert_code(EXIT_MISMATCH);
    Ok(())
}
