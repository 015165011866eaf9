use std::cmp::Ordering::{self, Equal, Greater, Less};

use proptest::prelude::*;

use super::{debian, pep440, semver};

fn check(cmp: fn(&str, &str) -> Ordering, pairs: &[(&str, &str, Ordering)]) {
    for (a, b, want) in pairs {
        assert_eq!(cmp(a, b), *want, "{a} vs {b}");
        assert_eq!(cmp(b, a), want.reverse(), "{b} vs {a}");
    }
}

#[test]
fn debian_known_pairs() {
    check(
        debian::compare,
        &[
            ("1.0", "1.0", Equal),
            ("1.0~rc1", "1.0", Less),
            ("1.0~rc1", "1.0~rc2", Less),
            ("1.0~~", "1.0~", Less),
            ("1:0.9", "2.0", Greater),
            ("2.36-9+deb12u4", "2.36-9+deb12u3", Greater),
            ("2.36-9+deb12u4", "2.36-9", Greater),
            ("3.0.11-1~deb12u2", "3.0.11-1", Less),
            ("1.0a", "1.0+", Less),
            ("1.0", "1.0a", Less),
            ("1.10", "1.9", Greater),
            ("1.001", "1.1", Equal),
            ("1.0-1", "1.0-10", Less),
            ("0:1.0", "1.0", Equal),
            ("99999999999999999999999", "1", Greater),
        ],
    );
}

#[test]
fn pep440_known_pairs() {
    check(
        pep440::compare,
        &[
            ("1.0", "1.0.0", Equal),
            ("1.0.dev1", "1.0a1", Less),
            ("1.0a1", "1.0b1", Less),
            ("1.0b2", "1.0rc1", Less),
            ("1.0rc1", "1.0", Less),
            ("1.0", "1.0.post1", Less),
            ("1.0a1.dev1", "1.0a1", Less),
            ("1.0.post1.dev1", "1.0.post1", Less),
            ("1!0.1", "2.0", Greater),
            ("1.0+local", "1.0", Greater),
            ("1.0+abc.5", "1.0+abc.10", Less),
            ("3.12.1", "3.9.18", Greater),
            ("1.0-1", "1.0.post1", Equal),
            ("1.0alpha1", "1.0a1", Equal),
            ("V2.0", "2.0", Equal),
            ("not a version", "1.0", Greater),
        ],
    );
}

#[test]
fn semver_known_pairs() {
    check(
        semver::compare,
        &[
            ("1.0.0", "1.0.0", Equal),
            ("1.0.0-alpha", "1.0.0", Less),
            ("1.0.0-alpha", "1.0.0-alpha.1", Less),
            ("1.0.0-alpha.1", "1.0.0-alpha.beta", Less),
            ("1.0.0-beta.2", "1.0.0-beta.11", Less),
            ("1.0.0-rc.1", "1.0.0", Less),
            ("1.0.0+build.1", "1.0.0+build.2", Equal),
            ("4.18.2", "4.9.0", Greater),
            ("v1.2.3", "1.2.3", Equal),
            ("1.2", "1.2.0", Greater),
        ],
    );
}

fn debian_version() -> impl Strategy<Value = String> {
    "([0-3]:)?[0-9]{1,3}(\\.[0-9a-z~+]{1,3}){0,3}(-[0-9a-z~+.]{1,4})?"
}

fn pep440_version() -> impl Strategy<Value = String> {
    "([0-2]!)?[0-9]{1,2}(\\.[0-9]{1,2}){0,3}((a|b|rc)[0-9])?(\\.post[0-9])?(\\.dev[0-9])?(\\+[a-z0-9]{1,3}(\\.[a-z0-9]{1,2})?)?|[a-z.]{1,4}"
}

fn semver_version() -> impl Strategy<Value = String> {
    "[0-9]{1,2}\\.[0-9]{1,2}\\.[0-9]{1,2}(-[0-9a-z]{1,3}(\\.[0-9a-z]{1,3}){0,2})?(\\+[a-z0-9]{1,3})?|[a-z.]{1,4}"
}

fn total(cmp: fn(&str, &str) -> Ordering, a: &str, b: &str, c: &str) {
    assert_eq!(cmp(a, b), cmp(b, a).reverse(), "antisymmetry {a} {b}");
    assert_eq!(cmp(a, a), Equal, "reflexive {a}");
    if cmp(a, b) != Greater && cmp(b, c) != Greater {
        assert_ne!(cmp(a, c), Greater, "transitivity {a} <= {b} <= {c}");
    }
    if cmp(a, b) == Equal && cmp(b, c) == Equal {
        assert_eq!(cmp(a, c), Equal, "transitivity of equality {a} {b} {c}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn debian_order_is_total(a in debian_version(), b in debian_version(), c in debian_version()) {
        total(debian::compare, &a, &b, &c);
    }

    #[test]
    fn pep440_order_is_total(a in pep440_version(), b in pep440_version(), c in pep440_version()) {
        total(pep440::compare, &a, &b, &c);
    }

    #[test]
    fn semver_order_is_total(a in semver_version(), b in semver_version(), c in semver_version()) {
        total(semver::compare, &a, &b, &c);
    }

    #[test]
    fn a_sorted_list_is_ordered_pairwise(
        deb in prop::collection::vec(debian_version(), 2..10),
        pep in prop::collection::vec(pep440_version(), 2..10),
        sem in prop::collection::vec(semver_version(), 2..10),
    ) {
        for (mut list, cmp) in [
            (deb, debian::compare as fn(&str, &str) -> Ordering),
            (pep, pep440::compare),
            (sem, semver::compare),
        ] {
            list.sort_by(|a, b| cmp(a, b));
            for i in 0..list.len() {
                for j in i + 1..list.len() {
                    prop_assert_ne!(cmp(&list[i], &list[j]), Greater, "{} after {}", list[i], list[j]);
                }
            }
        }
    }

    #[test]
    fn any_text_compares_without_panic(a in ".{0,20}", b in ".{0,20}") {
        for cmp in [debian::compare, pep440::compare, semver::compare] {
            prop_assert_eq!(cmp(&a, &b), cmp(&b, &a).reverse());
        }
    }
}
