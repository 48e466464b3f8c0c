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

/// The order a stop takes: each service's rank, 0 for those nothing depends on, else one
/// more than the highest rank among its dependents, so dependents always stop before what
/// they depend on. `depends[i]` lists the services `i` depends on, by index. Validation
/// has refused cycles; were one left, its members would share a rank, not loop.
pub fn stop_ranks(depends: &[Vec<usize>]) -> Vec<usize> {
    let mut dependents = vec![Vec::new(); depends.len()];
    for (i, deps) in depends.iter().enumerate() {
        for &d in deps {
            if d < depends.len() && d != i {
                dependents[d].push(i);
            }
        }
    }
    let mut rank: Vec<Option<usize>> = vec![None; depends.len()];
    let mut on_path = vec![false; depends.len()];
    for start in 0..depends.len() {
        // Depth first without recursion: a chain of thousands must not overflow the stack.
        let mut stack = vec![(start, 0usize)];
        on_path[start] = true;
        while let Some(top) = stack.last_mut() {
            let (at, next) = *top;
            if rank[at].is_some() {
                on_path[at] = false;
                stack.pop();
                continue;
            }
            match dependents[at].get(next).copied() {
                Some(d) => {
                    top.1 += 1;
                    if rank[d].is_none() && !on_path[d] {
                        on_path[d] = true;
                        stack.push((d, 0));
                    }
                }
                None => {
                    let r = dependents[at]
                        .iter()
                        .filter_map(|&d| rank[d])
                        .map(|r| r + 1)
                        .max();
                    rank[at] = Some(r.unwrap_or(0));
                    on_path[at] = false;
                    stack.pop();
                }
            }
        }
    }
    rank.into_iter().map(|r| r.unwrap_or(0)).collect()
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
    #[test]
    fn dependents_stop_before_their_dependencies() {
        // nginx -> app -> {db, cache}; worker -> db; lone has no one.
        let (db, cache, app, nginx, worker, lone) = (0, 1, 2, 3, 4, 5);
        let mut depends = vec![Vec::new(); 6];
        depends[app] = vec![db, cache];
        depends[nginx] = vec![app];
        depends[worker] = vec![db];
        let r = stop_ranks(&depends);
        assert_eq!(r[nginx], 0);
        assert_eq!(r[worker], 0);
        assert_eq!(r[lone], 0);
        assert_eq!(r[app], 1);
        assert_eq!(r[cache], 2);
        assert_eq!(r[db], 2, "after app, the deepest of its dependents");
    }

    #[test]
    fn a_long_chain_ranks_without_recursion() {
        let n = 20_000;
        let depends: Vec<Vec<usize>> = (0..n)
            .map(|i| if i + 1 < n { vec![i + 1] } else { Vec::new() })
            .collect();
        let r = stop_ranks(&depends);
        assert_eq!(r[0], 0);
        assert_eq!(r[n - 1], n - 1);
    }

    #[test]
    fn a_cycle_left_by_mistake_terminates() {
        let r = stop_ranks(&[vec![1], vec![0], vec![0]]);
        assert_eq!(r.len(), 3);
        assert_eq!(r[2], 0);
    }
}
