//! Statements of a write sent together.
//!
//! A PATCH is BEGIN, a read of the row, its update, a change log row, an
//! audit record and COMMIT. Only the read's answer is needed before going
//! on; the other statements answer with success or an error. Waiting for
//! each one costs a round trip and a wake-up of the PostgreSQL backend, so
//! a write queues them and sends them ahead of the next statement whose
//! answer it needs (tokio-postgres sends a query when it is first polled,
//! and the server answers in order): the PATCH takes two round trips
//! instead of six. A queued statement that fails makes the rest of the
//! transaction fail, and its error is the one reported.

use deadpool_postgres::Client;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;
use tokio_postgres::Error;

/// A statement sent but not yet answered, or not yet sent.
pub(super) type Pending<'t, E = Error> = Pin<Box<dyn Future<Output = Result<(), E>> + Send + 't>>;

/// Sends the `pending` statements, then `next`, in that order, and waits
/// for all of their answers. The first failure among `pending` is the
/// outer error (what follows it fails because of it); `next`'s own answer
/// is returned otherwise.
pub(super) async fn settle<T, E>(
    pending: Vec<Pending<'_, E>>,
    next: impl Future<Output = Result<T, E>>,
) -> Result<Result<T, E>, E> {
    let mut pending: Vec<Option<Pending<'_, E>>> = pending.into_iter().map(Some).collect();
    let mut next = std::pin::pin!(next);
    let mut answer = None;
    let mut failed = None;
    poll_fn(|cx| {
        // In order: each is sent at its first poll.
        for slot in pending.iter_mut() {
            if let Some(f) = slot
                && let Poll::Ready(done) = f.as_mut().poll(cx)
            {
                if let Err(e) = done {
                    failed.get_or_insert(e);
                }
                *slot = None;
            }
        }
        if answer.is_none()
            && let Poll::Ready(a) = next.as_mut().poll(cx)
        {
            answer = Some(a);
        }
        if answer.is_some() && pending.iter().all(Option::is_none) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    match failed {
        Some(e) => Err(e),
        None => Ok(answer.expect("answered")),
    }
}

/// A connection inside a transaction this process opened itself. Once the
/// transaction is over (`finish`, or `rollback` that succeeded) the
/// connection goes back to the pool; dropped before that (the request was
/// abandoned midway), the connection is closed instead, which makes the
/// server roll the transaction back, so that no other request ever gets a
/// connection with a transaction open.
pub(super) struct InTransaction(Option<Client>);

impl InTransaction {
    pub(super) fn new(client: Client) -> Self {
        InTransaction(Some(client))
    }

    pub(super) fn client(&self) -> &Client {
        self.0.as_ref().expect("the transaction is open")
    }

    /// The transaction committed.
    pub(super) fn finish(mut self) {
        self.0.take();
    }

    /// Ends a failed transaction. A connection that cannot even roll back
    /// is closed.
    pub(super) async fn rollback(mut self) {
        if let Some(c) = &self.0
            && c.batch_execute("ROLLBACK").await.is_ok()
        {
            self.0.take();
        }
    }
}

impl Drop for InTransaction {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            drop(deadpool_postgres::Object::take(client));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Pending, settle};
    use std::sync::{Arc, Mutex};

    type Log = Arc<Mutex<Vec<String>>>;

    /// A statement that notes when it is sent (first polled) and when it
    /// is answered (a poll later), answering `outcome`.
    fn statement(log: &Log, name: &str, outcome: Result<(), String>) -> Pending<'static, String> {
        let (log, name) = (log.clone(), name.to_owned());
        Box::pin(async move {
            log.lock().unwrap().push(format!("send {name}"));
            tokio::task::yield_now().await;
            log.lock().unwrap().push(format!("answer {name}"));
            outcome
        })
    }

    #[tokio::test]
    async fn queued_statements_go_out_in_order_before_the_next_and_all_are_awaited() {
        let log = Log::default();
        let queued = vec![
            statement(&log, "begin", Ok(())),
            statement(&log, "update", Ok(())),
        ];
        let next_log = log.clone();
        let answer = settle(queued, async move {
            next_log.lock().unwrap().push("send commit".into());
            Ok::<_, String>(7)
        })
        .await;
        assert_eq!(answer, Ok(Ok(7)));
        let log = log.lock().unwrap();
        assert_eq!(
            log[..3],
            ["send begin", "send update", "send commit"],
            "sent in order"
        );
        assert!(log.contains(&"answer update".to_owned()), "{log:?}");
    }

    #[tokio::test]
    async fn the_first_queued_failure_is_reported_rather_than_what_it_caused() {
        let log = Log::default();
        let queued = vec![
            statement(&log, "begin", Ok(())),
            statement(&log, "update", Err("unique violation".into())),
            statement(&log, "audit", Err("transaction aborted".into())),
        ];
        let answer = settle(queued, async {
            Err::<u64, _>("transaction aborted".to_owned())
        })
        .await;
        assert_eq!(answer, Err("unique violation".to_owned()));
    }

    #[tokio::test]
    async fn the_next_statement_answers_for_itself_when_the_queue_succeeded() {
        let log = Log::default();
        let queued = vec![statement(&log, "begin", Ok(()))];
        let answer = settle(queued, async { Err::<u64, _>("not found".to_owned()) }).await;
        assert_eq!(answer, Ok(Err("not found".to_owned())));
    }
}
