//! Scheduled runs: each server watches the schedules' clocks and, when a
//! tick is due, tries to claim it ([`TickClaims`]); the one that wins runs
//! the flow in a run slot like a request. Ticks another server holds are
//! watched until they are done, and claimed if their holder's lease runs out
//! (it died). A tick further behind than the lease (and a margin) is
//! dropped: it ran elsewhere, or was missed ([`Missed`] says what then).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::runs::outcome_label;
use super::server::Server;
use crate::schedules::claims::{Claim, TickClaims, TickLease};
use crate::schedules::{Missed, Schedules, Timer};

/// How often ticks held by another server are looked at again.
const WATCH_EVERY: Duration = Duration::from_millis(200);
/// Recent ticks a starting server looks at, at most.
const MAX_RECENT: usize = 256;
/// The longest sleep, so a stopping server notices soon.
const LONGEST_SLEEP: Duration = Duration::from_secs(1);

/// One schedule's clock in this server.
struct Watch {
    timer: Timer,
    /// The next tick not yet due.
    next: Option<DateTime<Utc>>,
    /// Due ticks not known to be done.
    pending: BTreeSet<DateTime<Utc>>,
}

impl Server {
    /// Runs the schedules' ticks until the server stops.
    pub(super) async fn tick(
        self: Arc<Self>,
        schedules: Schedules,
        claims: Arc<TickClaims>,
        scope: runner_core::Tenant,
    ) {
        let lease = self.options.tick_lease;
        let started = crate::clock::now_utc();
        // A tick further behind than this was run or given up elsewhere.
        let late_limit = chrono::Duration::from_std(lease).unwrap_or_default()
            + chrono::Duration::seconds(i64::from(crate::schedules::claims::DONE_SECS / 2));
        let mut watches = Vec::with_capacity(schedules.timers.len());
        for timer in schedules.timers {
            let mut pending = BTreeSet::new();
            if timer.missed == Missed::CatchUp
                && let Some(latest) = timer.latest(started)
            {
                let (claims, t) = (claims.clone(), timer.clone());
                let last = tokio::task::spawn_blocking(move || claims.last_done(&t)).await;
                match last {
                    // Never ran here before: nothing was missed.
                    Ok(Ok(Some(last))) if last < latest => {
                        tracing::info!(target: "schedules", schedule = %timer.schedule_id, "catching up the tick of {latest} (last run {last})");
                        pending.insert(latest);
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(target: "schedules", schedule = %timer.schedule_id, "cannot read the last tick: {e:#}")
                    }
                    Err(e) => tracing::warn!(target: "schedules", "{e}"),
                }
            }
            // Ticks servers are running as this one starts (a rolling
            // restart, or a server that died holding one): watched, so each
            // is run here if its holder's lease runs out.
            let recent: Vec<_> = timer
                .upcoming(started - late_limit)
                .take_while(|t| *t <= started)
                .take(MAX_RECENT)
                .collect();
            let (c, t) = (claims.clone(), timer.clone());
            let held = tokio::task::spawn_blocking(move || {
                recent
                    .into_iter()
                    .filter(|tick| c.held(&t, *tick).unwrap_or(false))
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
            pending.extend(held);
            let next = timer.upcoming(started).next();
            watches.push(Watch {
                next,
                timer,
                pending,
            });
        }
        // Ticks this server claimed but could not run (no run slot): watched again.
        let (give_back, mut given_back) = tokio::sync::mpsc::channel::<(usize, DateTime<Utc>)>(64);
        while !self.stopping.load(Ordering::SeqCst) {
            let now = crate::clock::now_utc();
            while let Ok((i, tick)) = given_back.try_recv() {
                watches[i].pending.insert(tick);
            }
            for (i, watch) in watches.iter_mut().enumerate() {
                while let Some(next) = watch.next.filter(|next| *next <= now) {
                    watch.pending.insert(next);
                    watch.next = watch.timer.upcoming(next).next();
                }
                let due: Vec<_> = watch.pending.iter().copied().collect();
                for tick in due {
                    if now - tick > late_limit {
                        tracing::warn!(target: "schedules", schedule = %watch.timer.schedule_id, "tick {tick} dropped: not seen done within the lease");
                        watch.pending.remove(&tick);
                        continue;
                    }
                    let (c, t) = (claims.clone(), watch.timer.clone());
                    let claim = tokio::task::spawn_blocking(move || c.claim(&t, tick)).await;
                    match claim {
                        Ok(Ok(Claim::Ours(held))) => {
                            watch.pending.remove(&tick);
                            crate::faults::maybe_die_holding_a_tick();
                            let server = self.clone();
                            let (timer, give_back) = (watch.timer.clone(), give_back.clone());
                            let scope = scope.clone();
                            tokio::spawn(async move {
                                if let Err(held) = server.run_tick(&timer, tick, held, scope).await
                                {
                                    drop(held);
                                    let _ = give_back.try_send((i, tick));
                                }
                            });
                        }
                        Ok(Ok(Claim::Running)) => {}
                        Ok(Ok(Claim::Done)) => {
                            watch.pending.remove(&tick);
                        }
                        Ok(Err(e)) => {
                            tracing::warn!(target: "schedules", schedule = %watch.timer.schedule_id, "{e:#}")
                        }
                        Err(e) => tracing::warn!(target: "schedules", "{e}"),
                    }
                }
            }
            let now = crate::clock::now_utc();
            let watching = watches.iter().any(|w| !w.pending.is_empty());
            let until_next = watches
                .iter()
                .filter_map(|w| w.next)
                .map(|next| (next - now).to_std().unwrap_or_default())
                .min()
                .unwrap_or(LONGEST_SLEEP);
            let mut sleep = until_next.min(LONGEST_SLEEP);
            if watching {
                sleep = sleep.min(WATCH_EVERY);
            }
            tokio::time::sleep(sleep).await;
        }
    }

    /// Runs `tick` of `timer`, held by `held`; gives the lease back as
    /// `Err` when no run slot is free (another try may run it).
    async fn run_tick(
        self: &Arc<Self>,
        timer: &Timer,
        tick: DateTime<Utc>,
        held: TickLease,
        scope: runner_core::Tenant,
    ) -> Result<(), TickLease> {
        let late = (crate::clock::now_utc() - tick)
            .to_std()
            .unwrap_or_default();
        let outcome = match self.catalog.find(&timer.flow_id).await {
            None => {
                tracing::error!(target: "schedules", schedule = %timer.schedule_id, "no flow `{}` is served here", timer.flow_id);
                "unknown_flow"
            }
            Some(flow) => {
                let permit = match self.slots.acquire().await {
                    Ok(permit) => permit,
                    Err(no_slot) => {
                        tracing::warn!(target: "schedules", schedule = %timer.schedule_id, "tick {tick} not run now: {}", no_slot.label());
                        return Err(held);
                    }
                };
                let mut settings = self.options.settings.clone();
                settings.scope = scope;
                settings.observer =
                    Some(self.metrics.clone() as Arc<dyn crate::nodes::NodeObserver>);
                let entry = timer.entry(tick).to_string();
                let started = std::time::Instant::now();
                let run = self.run_blocking(flow, entry, settings, permit).await;
                let label = outcome_label(&run);
                self.metrics
                    .finished(&timer.flow_id, label, started.elapsed());
                if let Ok(Ok(Err(failure))) = &run {
                    tracing::warn!(target: "schedules", schedule = %timer.schedule_id, "the run of tick {tick} failed: {failure:#}");
                }
                label
            }
        };
        let id = timer.schedule_id.clone();
        let marked = tokio::task::spawn_blocking(move || held.done()).await;
        match marked {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(target: "schedules", schedule = %id, "{e:#}"),
            Err(e) => tracing::warn!(target: "schedules", "{e}"),
        }
        // Counted once every server can see the tick done.
        self.metrics.ticked(&timer.schedule_id, outcome, late);
        tracing::info!(target: "schedules", schedule = %timer.schedule_id, "tick {tick} ran here: {outcome}, {} ms late", late.as_millis());
        Ok(())
    }
}
