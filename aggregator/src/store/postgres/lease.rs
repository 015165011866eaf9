//! Leases: which replica may write, on the database's clock, fenced by an
//! epoch (docs/store.md, "Several replicas").
//!
//! A lease is a row of `leases`: its owner and the address it serves at, an
//! epoch that grows by one each
//! time the lease changes hands (or is taken again after it lapsed), and
//! when it expires, by the database's clock (`now()`), so replicas whose
//! clocks disagree still agree on who holds it. The owner renews it well
//! before it expires; a replica that dies stops renewing and another takes
//! it once it expired.
//!
//! The epoch fences a stale owner: once the store holds a term
//! ([`PgStore::hold`]), every write transaction first reads its lease row
//! `FOR SHARE` and fails with [`StoreError::Fenced`] unless the row still
//! names this owner and epoch and has not expired. The share lock also
//! makes a takeover (an `UPDATE` of that row) wait until the writes that
//! passed the fence committed: the next owner, which loads what is stored
//! after taking the lease, sees every write the last one acknowledged.
//!
//! Rows, not session advisory locks: those have neither a time to live nor
//! an epoch, and a pooler such as PgBouncer hands sessions around.

use std::time::Duration;

use super::PgStore;
use crate::store::StoreError;

/// One term of a lease: who holds it, and from which epoch on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    /// The lease's name (`writer`).
    pub lease: String,
    /// The owner: a replica's name for itself.
    pub owner: String,
    /// The epoch of this term.
    pub epoch: i64,
}

/// What claiming a lease found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The lease is ours for a new term.
    Won {
        /// The new term.
        term: Term,
        /// The term before it, `None` when the lease never had an owner:
        /// whoever held it last (possibly this very owner, whose term
        /// lapsed).
        previous: Option<(String, i64)>,
    },
    /// Another owner holds it.
    Held {
        /// Who.
        owner: String,
        /// The address it serves at.
        address: String,
        /// In which epoch.
        epoch: i64,
        /// How long until it expires unless renewed.
        expires_in: Duration,
    },
}

/// Milliseconds of `d`, as the SQL below takes a time to live.
fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl PgStore {
    /// Takes `lease` for `owner`, serving at `address`, for `ttl` when
    /// nobody holds it or its holder's term expired; else says who holds
    /// it. A term of this very owner that has not expired is renewed and
    /// kept (same epoch). Blocks: call it on the blocking pool.
    pub fn claim(
        &self,
        lease: &str,
        owner: &str,
        address: &str,
        ttl: Duration,
    ) -> Result<Claim, StoreError> {
        self.block_on(self.claim_row(lease, owner, address, ttl))
    }

    /// Extends `term` by `ttl` from now, by the database's clock; `false`
    /// when it is no longer ours (it expired, or another owner took it).
    /// Blocks: call it on the blocking pool.
    pub fn renew(&self, term: &Term, ttl: Duration) -> Result<bool, StoreError> {
        self.block_on(self.renew_row(term, ttl))
    }

    /// Gives `term` up at once, so that another replica need not wait for
    /// it to expire; nothing happens when it is no longer ours. Blocks:
    /// call it on the blocking pool.
    pub fn release(&self, term: &Term) -> Result<(), StoreError> {
        self.block_on(self.release_row(term))
    }

    async fn claim_row(
        &self,
        lease: &str,
        owner: &str,
        address: &str,
        ttl: Duration,
    ) -> Result<Claim, StoreError> {
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(self.db("begin a lease claim"))?;
        // A first claim creates the row; replicas racing here then queue on
        // its row lock below.
        tx.execute(
            "INSERT INTO leases (name, owner, address, epoch, expires_at)
             VALUES ($1, '', '', 0, 'epoch') ON CONFLICT (name) DO NOTHING",
            &[&lease],
        )
        .await
        .map_err(self.db("create a lease"))?;
        let row = tx
            .query_one(
                "SELECT owner, epoch, expires_at > now(),
                        GREATEST(0, (EXTRACT(EPOCH FROM expires_at - now()) * 1000)::BIGINT),
                        address
                 FROM leases WHERE name = $1 FOR UPDATE",
                &[&lease],
            )
            .await
            .map_err(self.db("read a lease"))?;
        let (holder, epoch, live): (String, i64, bool) = (row.get(0), row.get(1), row.get(2));
        let left: i64 = row.get(3);
        if live && holder != owner {
            return Ok(Claim::Held {
                owner: holder,
                address: row.get(4),
                epoch,
                expires_in: Duration::from_millis(u64::try_from(left).unwrap_or(0)),
            });
        }
        let keep = live && holder == owner;
        let next = if keep { epoch } else { epoch + 1 };
        tx.execute(
            "UPDATE leases SET owner = $2, epoch = $3, address = $5,
                    expires_at = now() + $4::BIGINT * interval '1 millisecond'
             WHERE name = $1",
            &[&lease, &owner, &next, &millis(ttl), &address],
        )
        .await
        .map_err(self.db("take a lease"))?;
        tx.commit().await.map_err(self.db("commit a lease claim"))?;
        let term = Term {
            lease: lease.to_owned(),
            owner: owner.to_owned(),
            epoch: next,
        };
        let previous = (!holder.is_empty()).then_some((holder, epoch));
        Ok(Claim::Won { term, previous })
    }

    async fn renew_row(&self, term: &Term, ttl: Duration) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let renewed = client
            .execute(
                "UPDATE leases SET expires_at = now() + $4::BIGINT * interval '1 millisecond'
                 WHERE name = $1 AND owner = $2 AND epoch = $3 AND expires_at > now()",
                &[&term.lease, &term.owner, &term.epoch, &millis(ttl)],
            )
            .await
            .map_err(self.db("renew a lease"))?;
        Ok(renewed == 1)
    }

    async fn release_row(&self, term: &Term) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE leases SET expires_at = 'epoch'
                 WHERE name = $1 AND owner = $2 AND epoch = $3",
                &[&term.lease, &term.owner, &term.epoch],
            )
            .await
            .map_err(self.db("release a lease"))?;
        Ok(())
    }

    /// From now on, every write must hold `term` (see the module's
    /// documentation); `None` writes without a lease (one-shot commands).
    pub fn hold(&self, term: Option<Term>) {
        *self.fence.write().unwrap_or_else(|e| e.into_inner()) = term;
    }

    /// Fails unless the store writes without a lease or its term still
    /// holds; called first in each write transaction `tx`, whose share
    /// lock on the lease row keeps a takeover waiting until it ends.
    pub(super) async fn fenced(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
    ) -> Result<(), StoreError> {
        let term = self.fence.read().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(term) = term else {
            return Ok(());
        };
        let check = tx
            .prepare_cached(
                "SELECT owner, epoch, expires_at > now() FROM leases WHERE name = $1 FOR SHARE",
            )
            .await
            .map_err(self.db("prepare the lease check"))?;
        let row = tx
            .query_opt(&check, &[&term.lease])
            .await
            .map_err(self.db("check the lease"))?;
        let found = row.map(|r| {
            (
                r.get::<_, String>(0),
                r.get::<_, i64>(1),
                r.get::<_, bool>(2),
            )
        });
        match found {
            Some((owner, epoch, true)) if owner == term.owner && epoch == term.epoch => Ok(()),
            found => Err(StoreError::Fenced {
                store: self.name().to_owned(),
                lease: term.lease,
                epoch: term.epoch,
                now: match found {
                    Some((owner, epoch, _)) if owner != term.owner || epoch != term.epoch => {
                        format!("replica {owner:?} holds it in epoch {epoch}")
                    }
                    Some(_) => "it expired".to_owned(),
                    None => "the lease row is gone".to_owned(),
                },
            }),
        }
    }
}
