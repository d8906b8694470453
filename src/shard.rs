//! `--shard K/N`: a deterministic split of the collected, filtered tests into N disjoint parts
//! whose union is the suite, so that N machines (CI jobs, Kubernetes pods) each run one part and
//! `sipplauncher merge` joins their reports. Pure: the same tests and the same K/N give the same
//! part on every machine.
//!
//! Two ways to split, as nextest's `--partition` offers:
//! - `count` (the default, `--shard K/N` = `--shard count:K/N`): even sizes. Tests are dealt in
//!   name order, each to the part that has the fewest so far (the lowest number on a tie). Adding
//!   or removing a test moves others between parts: every machine must collect the same suite.
//! - `hash` (`--shard hash:K/N`): a test's part follows from its name alone (FNV-1a 64), so a test
//!   stays in its part when others are added or removed; the sizes are only even on average.
//!
//! Either way every test with a `dns.txt` goes to part 1: the DUT resolves through one resolver,
//! the DNS server of the sipplauncher running shard 1 (README, "Several machines").

use std::fmt;

/// How the suite is split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardMode {
    /// Even sizes, dealt in name order.
    Count,
    /// By a hash of the test's name: stable when tests are added.
    Hash,
}

impl ShardMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ShardMode::Count => "count",
            ShardMode::Hash => "hash",
        }
    }
}

/// Part `index` of `total` (1 <= index <= total).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub total: u32,
    pub mode: ShardMode,
}

impl fmt::Display for Shard {
    /// `K/N`, as the user gives it (`hash:K/N` for the hash split).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.mode {
            ShardMode::Count => write!(f, "{}/{}", self.index, self.total),
            ShardMode::Hash => write!(f, "hash:{}/{}", self.index, self.total),
        }
    }
}

/// What is wrong with a `--shard` value (the caller names the option).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("\"{0}\" is not K/N (e.g. 2/3, count:2/3 or hash:2/3)")]
    Syntax(String),
    #[error("\"{0}\" is not a split: use count:K/N or hash:K/N")]
    Mode(String),
    #[error("there is no shard {index} of {total}: K must be 1..{total}")]
    OutOfRange { index: u64, total: u64 },
    #[error("N must be at least 1")]
    NoShards,
}

impl Shard {
    /// `K/N`, `count:K/N` or `hash:K/N`.
    pub fn parse(raw: &str) -> Result<Shard, ShardError> {
        let t = raw.trim();
        let (mode, rest) = match t.split_once(':') {
            Some(("count", rest)) => (ShardMode::Count, rest),
            Some(("hash", rest)) => (ShardMode::Hash, rest),
            Some((other, _)) => return Err(ShardError::Mode(other.to_string())),
            None => (ShardMode::Count, t),
        };
        let syntax = || ShardError::Syntax(raw.to_string());
        let (k, n) = rest.split_once('/').ok_or_else(syntax)?;
        let whole = |s: &str| -> Result<u64, ShardError> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(syntax());
            }
            // Too many digits for u64 is still a number, just out of range.
            Ok(s.parse::<u64>().unwrap_or(u64::MAX))
        };
        let (index, total) = (whole(k)?, whole(n)?);
        if total == 0 {
            return Err(ShardError::NoShards);
        }
        if index == 0 || index > total {
            return Err(ShardError::OutOfRange { index, total });
        }
        let total = u32::try_from(total).map_err(|_| ShardError::OutOfRange { index, total })?;
        Ok(Shard {
            // index <= total, which fits.
            index: index as u32,
            total,
            mode,
        })
    }

    /// The part (1..=total) of each of `names` (sorted by name, as collected); `dns[i]` says
    /// whether test `i` has a `dns.txt` (it then goes to part 1).
    pub fn parts(mode: ShardMode, total: u32, names: &[&str], dns: &[bool]) -> Vec<u32> {
        assert_eq!(names.len(), dns.len(), "one dns flag per test");
        let total = total.max(1);
        match mode {
            ShardMode::Hash => names
                .iter()
                .zip(dns)
                .map(|(n, &d)| {
                    if d {
                        1
                    } else {
                        (fnv1a64(n.as_bytes()) % u64::from(total)) as u32 + 1
                    }
                })
                .collect(),
            ShardMode::Count => {
                let mut sizes = vec![0usize; total as usize];
                sizes[0] = dns.iter().filter(|&&d| d).count();
                dns.iter()
                    .map(|&d| {
                        if d {
                            return 1;
                        }
                        // The smallest part so far; the first of equals.
                        let (i, _) = sizes
                            .iter()
                            .enumerate()
                            .min_by_key(|&(i, s)| (*s, i))
                            .unwrap_or((0, &0));
                        sizes[i] += 1;
                        i as u32 + 1
                    })
                    .collect()
            }
        }
    }

    /// The positions (into `names`) of the tests of this part, in their order.
    pub fn select(&self, names: &[&str], dns: &[bool]) -> Vec<usize> {
        Shard::parts(self.mode, self.total, names, dns)
            .into_iter()
            .enumerate()
            .filter(|&(_, p)| p == self.index)
            .map(|(i, _)| i)
            .collect()
    }
}

/// FNV-1a, 64 bits: small, stable across versions and machines (std's hasher is neither).
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parse_the_three_forms() {
        let s = |index, total, mode| Shard { index, total, mode };
        assert_eq!(Shard::parse("2/3"), Ok(s(2, 3, ShardMode::Count)));
        assert_eq!(Shard::parse("count:1/1"), Ok(s(1, 1, ShardMode::Count)));
        assert_eq!(Shard::parse(" hash:3/3 "), Ok(s(3, 3, ShardMode::Hash)));
        assert_eq!(s(2, 3, ShardMode::Count).to_string(), "2/3");
        assert_eq!(s(2, 3, ShardMode::Hash).to_string(), "hash:2/3");
    }

    #[test]
    fn parse_errors_say_what_is_wrong() {
        let cases = [
            ("", r#""" is not K/N (e.g. 2/3, count:2/3 or hash:2/3)"#),
            ("3", r#""3" is not K/N (e.g. 2/3, count:2/3 or hash:2/3)"#),
            (
                "a/3",
                r#""a/3" is not K/N (e.g. 2/3, count:2/3 or hash:2/3)"#,
            ),
            (
                "-1/3",
                r#""-1/3" is not K/N (e.g. 2/3, count:2/3 or hash:2/3)"#,
            ),
            (
                "1/3/4",
                r#""1/3/4" is not K/N (e.g. 2/3, count:2/3 or hash:2/3)"#,
            ),
            (
                "slice:1/3",
                r#""slice" is not a split: use count:K/N or hash:K/N"#,
            ),
            ("0/3", "there is no shard 0 of 3: K must be 1..3"),
            ("4/3", "there is no shard 4 of 3: K must be 1..3"),
            ("1/0", "N must be at least 1"),
            (
                "1/99999999999",
                "there is no shard 1 of 99999999999: K must be 1..99999999999",
            ),
        ];
        for (raw, msg) in cases {
            let e = Shard::parse(raw).expect_err(raw);
            assert_eq!(e.to_string(), msg, "{raw:?}");
        }
    }

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("test-{i:04}")).collect()
    }

    #[test]
    fn count_is_even_and_dns_tests_go_to_shard_1() {
        let names = names(10);
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut dns = vec![false; 10];
        dns[7] = true;
        dns[9] = true;
        let parts = Shard::parts(ShardMode::Count, 3, &refs, &dns);
        assert_eq!(parts[7], 1);
        assert_eq!(parts[9], 1);
        let size = |k| parts.iter().filter(|&&p| p == k).count();
        assert_eq!([size(1), size(2), size(3)], [4, 3, 3]);
        // Without DNS tests: round robin.
        let parts = Shard::parts(ShardMode::Count, 3, &refs, &[false; 10]);
        assert_eq!(parts, vec![1, 2, 3, 1, 2, 3, 1, 2, 3, 1]);
    }

    #[test]
    fn hash_keeps_a_test_in_its_shard_when_others_are_added() {
        let before = names(40);
        let mut after = before.clone();
        after.extend((0..25).map(|i| format!("added-{i}")));
        after.sort();
        let part_of = |all: &[String]| {
            let refs: Vec<&str> = all.iter().map(String::as_str).collect();
            let parts = Shard::parts(ShardMode::Hash, 4, &refs, &vec![false; refs.len()]);
            all.iter()
                .cloned()
                .zip(parts)
                .collect::<std::collections::HashMap<_, _>>()
        };
        let (a, b) = (part_of(&before), part_of(&after));
        for n in &before {
            assert_eq!(a[n], b[n], "{n} moved");
        }
        // Every part gets some of 65 tests.
        for k in 1..=4 {
            assert!(b.values().any(|&p| p == k), "part {k} empty");
        }
        // The hash is FNV-1a 64, the same on every machine and version.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn more_shards_than_tests_leaves_some_empty() {
        let shard = Shard::parse("3/3").unwrap();
        assert!(shard.select(&["a", "b"], &[false, false]).is_empty());
        assert_eq!(
            Shard::parse("2/3")
                .unwrap()
                .select(&["a", "b"], &[false, false]),
            vec![1]
        );
    }

    proptest! {
        /// The parts are disjoint, their union is the suite, each test's part is the same every
        /// time, DNS tests are in part 1, and count parts differ in size by at most one (when the
        /// DNS tests do not already make part 1 the largest).
        #[test]
        fn parts_cover_the_suite_once(
            n in 0usize..60,
            total in 1u32..8,
            hash in any::<bool>(),
            dns_bits in proptest::collection::vec(any::<bool>(), 60),
        ) {
            let names = names(n);
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let dns = &dns_bits[..n];
            let mode = if hash { ShardMode::Hash } else { ShardMode::Count };
            let mut seen = vec![0u32; n];
            let mut sizes = Vec::new();
            for index in 1..=total {
                let shard = Shard { index, total, mode };
                let picked = shard.select(&refs, dns);
                prop_assert_eq!(&picked, &shard.select(&refs, dns), "stable");
                prop_assert!(picked.windows(2).all(|w| w[0] < w[1]), "in suite order");
                for &i in &picked {
                    seen[i] += 1;
                    if dns[i] {
                        prop_assert_eq!(index, 1);
                    }
                }
                sizes.push(picked.len());
            }
            prop_assert!(seen.iter().all(|&c| c == 1), "each test in exactly one part");
            let dns_count = dns.iter().filter(|&&d| d).count();
            if mode == ShardMode::Count && dns_count <= n / total as usize {
                let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
                prop_assert!(hi - lo <= 1, "{:?}", sizes);
            }
        }
    }
}
