//! The NLP worker threads: a fixed set of `processing.workers` OS threads that run the CPU-bound part of
//! each article's processing (parse, analyse, serialise), in the order the consumer submits them.
//!
//! Why not tokio's blocking pool: behind a semaphore it runs the same number of analyses at once, but each one
//! lands on whichever of its (many, short-lived) threads is idle, so the NLP's working set (model weights,
//! scratch buffers, the allocator's per-thread caches) is cold on every article. With the same two workers the
//! analysis took about a third longer inside the service than in the NLP-only benchmark; fixed threads keep it
//! warm. A panic inside a job is caught on its thread and reported to the submitter as a lost answer.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A handle on the worker threads; they stop when the last handle is dropped.
pub(crate) struct NlpWorkers {
    jobs: mpsc::Sender<Job>,
}

#[derive(Debug, thiserror::Error)]
#[error("the analysis panicked or its worker thread is gone")]
pub(crate) struct JobLost;

impl NlpWorkers {
    /// Starts `n` (at least one) threads named `stancewatch-nlp-<i>`.
    pub(crate) fn start(n: usize) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..n.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("stancewatch-nlp-{i}"))
                .spawn(move || loop {
                    // The lock is held only while waiting for the next job, not while running it.
                    let job = match queue.lock().unwrap_or_else(|p| p.into_inner()).recv() {
                        Ok(job) => job,
                        Err(_) => return, // every handle dropped: the service has stopped
                    };
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                })?;
        }
        Ok(Self { jobs })
    }

    /// Queues `job` to run on a worker thread after the jobs submitted before it, without waiting. A panic
    /// in `job` is caught and ends only that job: `job` must leave a trace of its own (the service's jobs
    /// catch their panics themselves).
    pub(crate) fn submit(&self, job: impl FnOnce() + Send + 'static) -> Result<(), JobLost> {
        self.jobs.send(Box::new(job)).map_err(|_| JobLost)
    }

    /// Runs `f` on a worker thread after the jobs submitted before it, and returns its result.
    #[cfg(test)]
    pub(crate) async fn run<T, F>(&self, f: F) -> Result<T, JobLost>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(move || {
            let _ = tx.send(f());
        })?;
        // A panic in `f` drops `tx` unsent.
        rx.await.map_err(|_| JobLost)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_jobs_and_survives_a_panicking_one() {
        let workers = NlpWorkers::start(2).unwrap();
        assert_eq!(workers.run(|| 2 + 2).await.unwrap(), 4);
        let lost = workers.run(|| -> u32 { panic!("boom") }).await;
        assert!(lost.is_err());
        // Both threads are still there to serve.
        let names = futures::future::join_all((0..8).map(|_| {
            workers.run(|| {
                std::thread::current()
                    .name()
                    .unwrap_or_default()
                    .to_string()
            })
        }))
        .await;
        assert!(names
            .iter()
            .all(|n| n.as_ref().unwrap().starts_with("stancewatch-nlp-")));
    }
}
