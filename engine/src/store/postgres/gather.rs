//! Requests gathered to be served together: callers hand a request to a few server tasks and
//! wait for its answer; a task that is free takes every request waiting (up to a limit) and
//! serves them as one. Changes ([`super::batch`]) and claims ([`super::claims`]) go this way.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Mutex};

use crate::store::{Result, StoreError};

/// A request and where its answer goes.
pub(super) struct Waiting<T, R> {
    pub(super) request: T,
    answer: oneshot::Sender<Result<R>>,
}

impl<T, R> Waiting<T, R> {
    /// Answer the request. A caller that went away meanwhile is not told; what was done for it
    /// stays done.
    pub(super) fn answer(self, outcome: Result<R>) {
        let _ = self.answer.send(outcome);
    }
}

/// The way to the server tasks. They end when this is dropped, after serving the requests
/// handed to them.
pub(super) struct Gathering<T, R> {
    queue: mpsc::UnboundedSender<Waiting<T, R>>,
}

impl<T: Send + 'static, R: Send + 'static> Gathering<T, R> {
    /// Start `tasks` server tasks on the current runtime, each serving at most `most` requests
    /// at a time with `serve`, which answers every request it is given.
    pub(super) fn start<F, Fut>(tasks: usize, most: usize, serve: F) -> Self
    where
        F: Fn(Vec<Waiting<T, R>>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (queue, receiver) = mpsc::unbounded_channel();
        let receiver = Arc::new(Mutex::new(receiver));
        let serve = Arc::new(serve);
        for _ in 0..tasks.max(1) {
            let (receiver, serve) = (receiver.clone(), serve.clone());
            tokio::spawn(async move {
                loop {
                    let mut waiting = Vec::new();
                    {
                        let mut receiver = receiver.lock().await;
                        match receiver.recv().await {
                            Some(w) => waiting.push(w),
                            None => return,
                        }
                        while waiting.len() < most {
                            let Ok(w) = receiver.try_recv() else { break };
                            waiting.push(w);
                        }
                    }
                    serve(waiting).await;
                }
            });
        }
        Gathering { queue }
    }

    /// Hand a request over and wait for its answer. Once handed over, it is served even if the
    /// caller stops waiting.
    pub(super) async fn ask(&self, request: T) -> Result<R> {
        let (answer, outcome) = oneshot::channel();
        self.queue
            .send(Waiting { request, answer })
            .map_err(|_| closed())?;
        outcome.await.map_err(|_| closed())?
    }
}

fn closed() -> StoreError {
    StoreError::Unavailable("the store is closed".into())
}
