//! Cross-article batching: one thread owns the transformer, analyses submit their sentences and wait.
//!
//! A forward pass over 16-100 sentences costs about half as much per sentence as one over a single sentence,
//! and an article has only a handful of entity-bearing sentences, so batching within an article is not
//! enough. The batcher takes one request, then everything else already queued (up to `max_pending`
//! sentences), runs them together (sorted by length, `max_batch` per forward pass, each padded to its
//! longest) and answers each request with its share. No timer: while a batch runs the next one queues, so
//! batches grow with the load and an idle service answers at once. The callers are the stream's blocking
//! NLP workers; a worker waiting here holds its article's in-flight slot, so when the model is the
//! bottleneck the in-flight limit fills and the consumer pauses its partitions, as in fast mode.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use super::model::{AccurateModel, SentenceTargets};
use super::AccurateError;

type Probabilities = Vec<Vec<Option<[f32; 3]>>>;

struct Job {
    sentences: Vec<SentenceTargets>,
    reply: mpsc::SyncSender<Result<Probabilities, String>>,
}

/// Counters of the work done, for benchmarks and logs.
#[derive(Debug, Default)]
pub struct BatchStats {
    /// Batches run (each one or more forward passes).
    pub batches: AtomicU64,
    /// Requests (analyses) served.
    pub requests: AtomicU64,
    /// Sentences read by the transformer.
    pub sentences: AtomicU64,
}

pub struct Batcher {
    tx: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<BatchStats>,
}

impl Batcher {
    /// Starts the model thread. `max_batch` sentences per forward pass; one batch collects up to four times
    /// that from the queue.
    pub fn start(model: AccurateModel, max_batch: usize) -> Self {
        let (tx, rx) = mpsc::channel::<Job>();
        let stats = Arc::new(BatchStats::default());
        let counters = stats.clone();
        let max_batch = max_batch.max(1);
        let max_pending = 4 * max_batch;
        let thread = std::thread::Builder::new()
            .name("stance-transformer".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut n = first.sentences.len();
                    let mut jobs = vec![first];
                    while n < max_pending {
                        match rx.try_recv() {
                            Ok(j) => {
                                n += j.sentences.len();
                                jobs.push(j);
                            }
                            Err(_) => break,
                        }
                    }
                    let counts: Vec<usize> = jobs.iter().map(|j| j.sentences.len()).collect();
                    let mut all = Vec::with_capacity(n);
                    let mut replies = Vec::with_capacity(jobs.len());
                    for j in jobs {
                        all.extend(j.sentences);
                        replies.push(j.reply);
                    }
                    // A panic in the model fails these requests, not the thread.
                    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        model.probabilities(&all, max_batch)
                    }));
                    counters.batches.fetch_add(1, Ordering::Relaxed);
                    counters
                        .requests
                        .fetch_add(replies.len() as u64, Ordering::Relaxed);
                    counters.sentences.fetch_add(n as u64, Ordering::Relaxed);
                    match result {
                        Ok(Ok(probs)) => {
                            let mut probs = probs.into_iter();
                            for (reply, k) in replies.into_iter().zip(counts) {
                                let _ = reply.send(Ok(probs.by_ref().take(k).collect()));
                            }
                        }
                        Ok(Err(e)) => {
                            for reply in replies {
                                let _ = reply.send(Err(e.to_string()));
                            }
                        }
                        Err(_) => {
                            for reply in replies {
                                let _ = reply.send(Err("the transformer panicked".into()));
                            }
                        }
                    }
                }
            })
            .expect("spawning the transformer thread");
        Self {
            tx: Some(tx),
            thread: Some(thread),
            stats,
        }
    }

    /// The probabilities of every target of `sentences` (None where the length cap cut a target off), read
    /// in a batch with whatever other analyses are waiting. Blocks until the batch has run.
    pub fn score(&self, sentences: Vec<SentenceTargets>) -> Result<Probabilities, AccurateError> {
        if sentences.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = mpsc::sync_channel(1);
        let gone = || AccurateError::Inference("the transformer thread has stopped".into());
        self.tx
            .as_ref()
            .ok_or_else(gone)?
            .send(Job { sentences, reply })
            .map_err(|_| gone())?;
        answer
            .recv()
            .map_err(|_| gone())?
            .map_err(AccurateError::Inference)
    }

    pub fn stats(&self) -> &BatchStats {
        &self.stats
    }
}

impl Drop for Batcher {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop after the batch in progress.
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
