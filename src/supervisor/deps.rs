//! PURE: may a service start, given where its dependencies are?

/// How one dependency stands, as its dependents see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Up, done, skipped, or a cron job (which never holds anyone back).
    Satisfied,
    /// Failed or stopped: it cannot satisfy anyone unless started again by hand.
    Blocking,
    /// On its way.
    NotYet,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Ready,
    /// Held back by this dependency (the first one in `depends_on` order that is not
    /// satisfied yet).
    Wait(String),
    /// This dependency can no longer satisfy it.
    Blocked(String),
}

/// The verdict for a service depending on `deps`; `standing` answers for each one by
/// name (None for a name it does not know, which validation has already refused).
pub fn verdict(deps: &[String], standing: impl Fn(&str) -> Option<Standing>) -> Verdict {
    let mut waiting = None;
    for dep in deps {
        match standing(dep) {
            None | Some(Standing::Satisfied) => {}
            Some(Standing::Blocking) => return Verdict::Blocked(dep.clone()),
            Some(Standing::NotYet) => {
                waiting.get_or_insert(dep);
            }
        }
    }
    match waiting {
        Some(dep) => Verdict::Wait(dep.clone()),
        None => Verdict::Ready,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn lookup<'a>(table: &'a [(&'a str, Standing)]) -> impl Fn(&str) -> Option<Standing> + 'a {
        move |name| table.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
    }

    #[test]
    fn no_dependencies_is_ready() {
        assert_eq!(verdict(&[], |_| None), Verdict::Ready);
    }

    #[test]
    fn all_satisfied_is_ready() {
        let t = [("a", Standing::Satisfied), ("b", Standing::Satisfied)];
        assert_eq!(verdict(&names(&["a", "b"]), lookup(&t)), Verdict::Ready);
    }

    #[test]
    fn waits_for_the_first_dependency_not_yet_satisfied() {
        let t = [
            ("a", Standing::Satisfied),
            ("b", Standing::NotYet),
            ("c", Standing::NotYet),
        ];
        assert_eq!(
            verdict(&names(&["a", "b", "c"]), lookup(&t)),
            Verdict::Wait("b".into())
        );
    }

    #[test]
    fn a_blocking_dependency_wins_over_one_still_on_its_way() {
        let t = [("a", Standing::NotYet), ("b", Standing::Blocking)];
        assert_eq!(
            verdict(&names(&["a", "b"]), lookup(&t)),
            Verdict::Blocked("b".into())
        );
    }

    #[test]
    fn an_unknown_name_holds_nobody_back() {
        let t = [("a", Standing::Satisfied)];
        assert_eq!(verdict(&names(&["a", "ghost"]), lookup(&t)), Verdict::Ready);
    }
}
