//! `depends_on` checks: unknown targets, self-dependencies and cycles.

use std::collections::{HashMap, HashSet};

use super::locate::{child, Problem, Seg};

/// One service's `depends_on` entries with their positions in the YAML list.
pub(super) struct Dependencies {
    pub(super) name: String,
    pub(super) listed: Vec<(String, usize)>,
}

pub(super) fn check(services: &[Dependencies]) -> Vec<Problem> {
    let index: HashMap<&str, usize> = services
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let mut problems = Vec::new();
    let mut edges = vec![Vec::new(); services.len()];
    for (i, service) in services.iter().enumerate() {
        let deps_path = depends_on_path(&service.name);
        for (dep, position) in &service.listed {
            let mut path = deps_path.clone();
            path.push(Seg::Index(*position));
            if *dep == service.name {
                problems.push(Problem {
                    path,
                    message: "a service cannot depend on itself".into(),
                });
                continue;
            }
            match index.get(dep.as_str()) {
                Some(&target) => edges[i].push(target),
                None => problems.push(Problem {
                    path,
                    message: format!("unknown service \"{dep}\""),
                }),
            }
        }
    }
    for cycle in cycles(&edges) {
        let mut names: Vec<&str> = cycle.iter().map(|&i| services[i].name.as_str()).collect();
        names.push(names[0]);
        problems.push(Problem {
            path: depends_on_path(&services[cycle[0]].name),
            message: format!("dependency cycle: {}", names.join(" -> ")),
        });
    }
    problems
}

fn depends_on_path(name: &str) -> Vec<Seg> {
    child(
        &[Seg::Key("services".into()), Seg::Key(name.to_string())],
        "depends_on",
    )
}

/// Every cycle closed by a back edge of a depth-first search in file order, each rotated
/// to start at its first service in the file and reported once. Iterative, so a long
/// dependency chain cannot overflow the stack.
fn cycles(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut mark = vec![Mark::New; edges.len()];
    // Where each node marked OnPath sits in `path`.
    let mut depth = vec![0; edges.len()];
    let mut found = Vec::new();
    let mut seen = HashSet::new();
    for start in 0..edges.len() {
        if mark[start] != Mark::New {
            continue;
        }
        // (node, index of the next edge to follow)
        let mut path: Vec<(usize, usize)> = vec![(start, 0)];
        mark[start] = Mark::OnPath;
        depth[start] = 0;
        while let Some(&mut (node, ref mut next)) = path.last_mut() {
            let Some(&target) = edges[node].get(*next) else {
                mark[node] = Mark::Done;
                path.pop();
                continue;
            };
            *next += 1;
            match mark[target] {
                Mark::New => {
                    mark[target] = Mark::OnPath;
                    depth[target] = path.len();
                    path.push((target, 0));
                }
                Mark::OnPath => {
                    let from = depth[target];
                    let mut cycle: Vec<usize> = path[from..].iter().map(|&(n, _)| n).collect();
                    let first = (0..cycle.len()).min_by_key(|&k| cycle[k]).unwrap_or(0);
                    cycle.rotate_left(first);
                    if seen.insert(cycle.clone()) {
                        found.push(cycle);
                    }
                }
                Mark::Done => {}
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deps(list: &[(&str, &[&str])]) -> Vec<Dependencies> {
        list.iter()
            .map(|(name, on)| Dependencies {
                name: name.to_string(),
                listed: on
                    .iter()
                    .enumerate()
                    .map(|(i, d)| (d.to_string(), i))
                    .collect(),
            })
            .collect()
    }

    fn messages(list: &[(&str, &[&str])]) -> Vec<String> {
        check(&deps(list)).into_iter().map(|p| p.message).collect()
    }

    #[test]
    fn cycle_is_printed_from_its_first_service() {
        assert_eq!(
            messages(&[("a", &["b"]), ("b", &["a"])]),
            ["dependency cycle: a -> b -> a"]
        );
        assert_eq!(
            messages(&[("x", &[]), ("b", &["c"]), ("c", &["d"]), ("d", &["b"])]),
            ["dependency cycle: b -> c -> d -> b"]
        );
    }

    #[test]
    fn separate_cycles_are_each_reported() {
        let got = messages(&[
            ("a", &["b"]),
            ("b", &["a"]),
            ("c", &["d"]),
            ("d", &["c", "a"]),
        ]);
        assert_eq!(
            got,
            [
                "dependency cycle: a -> b -> a",
                "dependency cycle: c -> d -> c"
            ]
        );
    }

    #[test]
    fn unknown_and_self_dependencies() {
        let problems = check(&deps(&[("a", &["a", "ghost"]), ("b", &["a"])]));
        let got: Vec<(String, String)> = problems
            .iter()
            .map(|p| {
                (
                    super::super::locate::display_path(&p.path),
                    p.message.clone(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "services.a.depends_on[0]".to_string(),
                    "a service cannot depend on itself".to_string()
                ),
                (
                    "services.a.depends_on[1]".to_string(),
                    "unknown service \"ghost\"".to_string()
                ),
            ]
        );
    }

    #[test]
    fn long_chains_and_diamonds_are_fine() {
        let names: Vec<String> = (0..20_000).map(|i| format!("s{i}")).collect();
        let chain: Vec<Dependencies> = names
            .iter()
            .enumerate()
            .map(|(i, n)| Dependencies {
                name: n.clone(),
                listed: names
                    .get(i + 1)
                    .map(|next| vec![(next.clone(), 0)])
                    .unwrap_or_default(),
            })
            .collect();
        assert!(check(&chain).is_empty());
        assert!(
            messages(&[("a", &["b", "c"]), ("b", &["d"]), ("c", &["d"]), ("d", &[])]).is_empty()
        );
    }
}
