//! Jobs that reach the model at about the same time share one forward pass.
//!
//! On a GPU, a batch of four conditioning images through the ViT and the backbone costs little
//! more than one image (the backbone's 3072 × 1024 activations leave most of a large GPU idle),
//! so the slots that arrive together are served by one batched [`TripoSr::scene_codes`] call.
//! On the CPU a batch is no faster than its images one after another, so batching is off there.
//!
//! The first job to arrive while no batch runs becomes the leader: it waits up to the gather
//! window for more jobs (at most `max_batch` in all), runs the batch on its own thread, and
//! hands every member its scene code. The others wait, relaying the batch's progress to their
//! own callbacks (which must stay on their own threads). A member cancelled while waiting
//! returns at once; the batch goes on for the others and stops only when every member is
//! cancelled.
//!
//! [`TripoSr::scene_codes`]: super::TripoSr::scene_codes

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::scene::{CondImage, SceneCode};
use crate::cancel::CancelToken;
use crate::error::{OrfeasError, Result};

/// How often a waiting member wakes to look at its own cancel token.
const CANCEL_POLL: Duration = Duration::from_millis(50);

/// A batched forward: images in, one scene code per image out, progress as a fraction.
pub(crate) type Forward<'a> =
    &'a (dyn Fn(&[&CondImage], &CancelToken, &mut dyn FnMut(f32)) -> Result<Vec<SceneCode>> + Sync);

/// What the batcher did, for tests and logs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// The size of every batch run, in order.
    pub batch_sizes: Vec<usize>,
}

#[derive(Debug)]
pub(crate) struct JobBatcher {
    max_batch: usize,
    window: Duration,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    next_ticket: u64,
    /// Waiting for a leader, oldest first.
    queue: VecDeque<Request>,
    leader_active: bool,
    /// Members of the running batch and the fraction of it done.
    progress: HashMap<u64, f32>,
    /// Results not yet collected by their member, with the batch's last progress fraction (a
    /// member that slept through the final updates still reports them before it returns).
    done: HashMap<u64, (Result<SceneCode>, f32)>,
    /// Members of the running batch that stopped waiting (cancelled): their results are dropped.
    abandoned: HashSet<u64>,
    stats: BatchStats,
}

#[derive(Debug)]
struct Request {
    ticket: u64,
    image: CondImage,
    cancel: CancelToken,
}

impl JobBatcher {
    /// Batches of at most `max_batch` (≥ 2) images; a leader waits at most `window` for company.
    pub(crate) fn new(max_batch: usize, window: Duration) -> Self {
        Self {
            max_batch: max_batch.max(2),
            window,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        }
    }

    pub(crate) fn stats(&self) -> BatchStats {
        self.lock().stats.clone()
    }

    /// One job's scene code, computed in whichever batch takes it.
    pub(crate) fn scene_code(
        &self,
        forward: Forward<'_>,
        image: &CondImage,
        cancel: &CancelToken,
        on_progress: &mut dyn FnMut(f32),
    ) -> Result<SceneCode> {
        cancel.check()?;
        let mut state = self.lock();
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.queue.push_back(Request {
            ticket,
            image: image.clone(),
            cancel: cancel.clone(),
        });
        self.changed.notify_all();
        let mut reported = 0f32;
        loop {
            if let Some((result, fraction)) = state.done.remove(&ticket) {
                drop(state);
                if result.is_ok() && fraction > reported {
                    on_progress(fraction);
                }
                return result;
            }
            if !state.leader_active {
                state = self.lead(state, forward, ticket, &mut |fraction| {
                    if fraction > reported {
                        reported = fraction;
                        on_progress(fraction);
                    }
                });
                continue;
            }
            if cancel.is_cancelled() {
                if let Some(at) = state.queue.iter().position(|r| r.ticket == ticket) {
                    state.queue.remove(at);
                } else if state.progress.contains_key(&ticket) {
                    state.abandoned.insert(ticket);
                }
                return Err(OrfeasError::Cancelled);
            }
            if let Some(&fraction) = state.progress.get(&ticket) {
                if fraction > reported {
                    reported = fraction;
                    // The callback may be slow: never call it with the lock held.
                    drop(state);
                    on_progress(fraction);
                    state = self.lock();
                    continue;
                }
            }
            state = self.wait(state, CANCEL_POLL);
        }
    }

    /// Gathers a batch, runs it with the lock released, and publishes its results. The leader's
    /// own progress goes straight to its callback (`own`): it runs on the leader's thread.
    fn lead<'s>(
        &'s self,
        mut state: MutexGuard<'s, State>,
        forward: Forward<'_>,
        own: u64,
        on_progress: &mut dyn FnMut(f32),
    ) -> MutexGuard<'s, State> {
        state.leader_active = true;
        let deadline = Instant::now() + self.window;
        while state.queue.len() < self.max_batch {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = self.wait(state, left);
        }
        let take = state.queue.len().min(self.max_batch);
        let (members, cancelled): (Vec<Request>, Vec<Request>) = state
            .queue
            .drain(..take)
            .partition(|r| !r.cancel.is_cancelled());
        // Their owners have not looked yet (a waiting member leaves the queue when it sees its
        // cancel): the answer waits for them.
        for request in cancelled {
            state
                .done
                .insert(request.ticket, (Err(OrfeasError::Cancelled), 0.0));
        }
        if members.is_empty() {
            state.leader_active = false;
            self.changed.notify_all();
            return state;
        }
        for member in &members {
            state.progress.insert(member.ticket, 0.0);
        }
        drop(state);

        let leads_itself = members.iter().any(|m| m.ticket == own);
        let outcome = self.run(forward, &members, &mut |fraction| {
            if leads_itself {
                on_progress(fraction);
            }
        });

        let mut state = self.lock();
        state.stats.batch_sizes.push(members.len());
        let mut outcome = outcome.map(Vec::into_iter);
        for member in &members {
            let fraction = state.progress.remove(&member.ticket).unwrap_or(0.0);
            let result = match &mut outcome {
                Ok(codes) => codes.next().ok_or_else(|| {
                    OrfeasError::Internal("triposr: a batch returned too few scene codes".into())
                }),
                Err(e) => Err(shared_error(e)),
            };
            if !state.abandoned.remove(&member.ticket) {
                state.done.insert(member.ticket, (result, fraction));
            }
        }
        state.leader_active = false;
        self.changed.notify_all();
        state
    }

    /// The batched forward. It stops early only when every member has been cancelled.
    fn run(
        &self,
        forward: Forward<'_>,
        members: &[Request],
        leader_progress: &mut dyn FnMut(f32),
    ) -> Result<Vec<SceneCode>> {
        let batch_cancel = CancelToken::new();
        let images: Vec<&CondImage> = members.iter().map(|r| &r.image).collect();
        let mut publish = |fraction: f32| {
            if members.iter().all(|r| r.cancel.is_cancelled()) {
                batch_cancel.cancel();
            }
            {
                let mut state = self.lock();
                for member in members {
                    if let Some(p) = state.progress.get_mut(&member.ticket) {
                        *p = fraction;
                    }
                }
                self.changed.notify_all();
            }
            leader_progress(fraction);
        };
        forward(&images, &batch_cancel, &mut publish)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind, still consistent enough to
        // answer the other members (their results or their absence).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait<'s>(&self, state: MutexGuard<'s, State>, at_most: Duration) -> MutexGuard<'s, State> {
        match self.changed.wait_timeout(state, at_most) {
            Ok((state, _)) => state,
            Err(poisoned) => poisoned.into_inner().0,
        }
    }
}

/// A batch's failure, as each of its members reports it.
fn shared_error(e: &OrfeasError) -> OrfeasError {
    match e {
        OrfeasError::Cancelled => OrfeasError::Cancelled,
        other => OrfeasError::Internal(format!("triposr: batched forward failed: {other}")),
    }
}
