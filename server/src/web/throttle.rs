//! Slowing down password guessing: after a few failed sign-ins for one user, or from one
//! client address, further attempts are refused without looking at the password until a
//! waiting time has passed, and the wait doubles with each further failure (1 s, 2 s, 4 s, …
//! up to 15 minutes). A success clears the user's and the address's count.
//!
//! Kept in memory on each node, not in the database: a guess then costs the attacker a
//! refusal and the server no write (durable counters would let anyone load the database by
//! failing sign-ins), and a restart forgets at most a few minutes of waiting. Nodes sharing a
//! database count apart, so an attacker spreading guesses over N nodes gets N times the
//! attempts: still a handful an hour once the waits have grown. Refusing instead of sleeping
//! holds no connection open for the attacker.
//!
//! Counting per address too stops one client trying one password against many users; its
//! threshold is higher, since many people may share an address (an office behind NAT).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed for one user before each attempt must wait.
pub const USER_FREE: u32 = 5;
/// Failures allowed from one address before each attempt must wait.
pub const ADDRESS_FREE: u32 = 20;
/// The longest wait.
pub const MAX_WAIT: Duration = Duration::from_secs(15 * 60);
/// Counts idle this long are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);
/// Entries kept at most (an attacker cycling user names cannot grow the map for ever).
const MAX_ENTRIES: usize = 100_000;

#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    last: Instant,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    User { tenant: String, user: String },
    Address(IpAddr),
}

#[derive(Default)]
pub struct Throttle {
    entries: Mutex<HashMap<Key, Failures>>,
}

/// The wait after `count` failures where `free` are allowed.
fn wait(count: u32, free: u32) -> Duration {
    if count < free {
        return Duration::ZERO;
    }
    let doublings = (count - free).min(20);
    Duration::from_secs(1u64 << doublings).min(MAX_WAIT)
}

impl Throttle {
    fn keys(tenant: &str, user: &str, address: Option<IpAddr>) -> Vec<(Key, u32)> {
        let mut keys = vec![(
            Key::User {
                tenant: tenant.to_string(),
                user: user.to_string(),
            },
            USER_FREE,
        )];
        if let Some(a) = address {
            keys.push((Key::Address(a), ADDRESS_FREE));
        }
        keys
    }

    /// How long this attempt must still wait (zero: it may go ahead) at `now`.
    pub fn retry_after(
        &self,
        tenant: &str,
        user: &str,
        address: Option<IpAddr>,
        now: Instant,
    ) -> Duration {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        Self::keys(tenant, user, address)
            .into_iter()
            .filter_map(|(k, free)| {
                let f = entries.get(&k)?;
                let until = f.last + wait(f.count, free);
                Some(until.saturating_duration_since(now))
            })
            .max()
            .unwrap_or(Duration::ZERO)
    }

    pub fn failed(&self, tenant: &str, user: &str, address: Option<IpAddr>, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, f| now.saturating_duration_since(f.last) < FORGET_AFTER);
        }
        for (k, _) in Self::keys(tenant, user, address) {
            let f = entries.entry(k).or_insert(Failures {
                count: 0,
                last: now,
            });
            // A count idle for long starts again.
            if now.saturating_duration_since(f.last) >= FORGET_AFTER {
                f.count = 0;
            }
            f.count = f.count.saturating_add(1);
            f.last = now;
        }
    }

    pub fn succeeded(&self, tenant: &str, user: &str, address: Option<IpAddr>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        for (k, _) in Self::keys(tenant, user, address) {
            entries.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_after_the_free_failures() {
        assert_eq!(wait(0, 5), Duration::ZERO);
        assert_eq!(wait(4, 5), Duration::ZERO);
        assert_eq!(wait(5, 5), Duration::from_secs(1));
        assert_eq!(wait(6, 5), Duration::from_secs(2));
        assert_eq!(wait(9, 5), Duration::from_secs(16));
        assert_eq!(wait(40, 5), MAX_WAIT);
        assert_eq!(wait(u32::MAX, 5), MAX_WAIT);
    }

    #[test]
    fn a_user_is_slowed_then_cleared_by_a_success() {
        let t = Throttle::default();
        let ip: IpAddr = [10, 0, 0, 1].into();
        let start = Instant::now();
        for _ in 0..USER_FREE {
            assert_eq!(t.retry_after("d", "ann", Some(ip), start), Duration::ZERO);
            t.failed("d", "ann", Some(ip), start);
        }
        assert_eq!(
            t.retry_after("d", "ann", Some(ip), start),
            Duration::from_secs(1)
        );
        // Another user from the same address is not slowed yet; the same user from
        // elsewhere is.
        assert_eq!(t.retry_after("d", "bob", Some(ip), start), Duration::ZERO);
        assert_eq!(
            t.retry_after("d", "ann", None, start),
            Duration::from_secs(1)
        );
        // The same name in another tenant is another user.
        assert_eq!(t.retry_after("other", "ann", None, start), Duration::ZERO);
        let later = start + Duration::from_secs(1);
        assert_eq!(t.retry_after("d", "ann", Some(ip), later), Duration::ZERO);
        t.failed("d", "ann", Some(ip), later);
        assert_eq!(
            t.retry_after("d", "ann", Some(ip), later),
            Duration::from_secs(2)
        );
        t.succeeded("d", "ann", Some(ip));
        assert_eq!(t.retry_after("d", "ann", Some(ip), later), Duration::ZERO);
    }

    #[test]
    fn an_address_trying_many_users_is_slowed() {
        let t = Throttle::default();
        let ip: IpAddr = [10, 0, 0, 2].into();
        let now = Instant::now();
        for i in 0..ADDRESS_FREE {
            t.failed("d", &format!("user{i}"), Some(ip), now);
        }
        assert_eq!(
            t.retry_after("d", "someone_new", Some(ip), now),
            Duration::from_secs(1)
        );
        assert_eq!(t.retry_after("d", "someone_new", None, now), Duration::ZERO);
    }

    #[test]
    fn old_failures_are_forgotten() {
        let t = Throttle::default();
        let start = Instant::now();
        for _ in 0..USER_FREE + 3 {
            t.failed("d", "ann", None, start);
        }
        let much_later = start + FORGET_AFTER;
        t.failed("d", "ann", None, much_later);
        assert_eq!(t.retry_after("d", "ann", None, much_later), Duration::ZERO);
    }
}
