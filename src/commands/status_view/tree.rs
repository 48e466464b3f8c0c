//! A service's processes as a tree. The supervisor reports them in no particular order;
//! the client alone arranges them, for the text block and for `--json` alike.

use crate::ipc::ProcessInfo;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

/// One process's place in the tree.
struct Node {
    index: usize,
    depth: usize,
    /// The last of two or more siblings.
    last: bool,
}

/// Parents before children, depth first, siblings by pid. A process whose parent is not
/// in the set is a root; roots go by pid too, except that `lead` comes first. Processes
/// in a parent loop (pids read at different instants, one reused in between) hang from
/// no root and are not in the walk.
fn walk(procs: &[ProcessInfo], lead: Option<i32>) -> Vec<Node> {
    let mut by_pid: Vec<usize> = (0..procs.len()).collect();
    by_pid.sort_by_key(|i| procs[*i].pid);
    let present: HashSet<i32> = procs.iter().map(|p| p.pid).collect();
    let mut children: HashMap<i32, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for i in by_pid {
        let p = &procs[i];
        if p.ppid != p.pid && present.contains(&p.ppid) {
            children.entry(p.ppid).or_default().push(i);
        } else {
            roots.push(i);
        }
    }
    roots.sort_by_key(|i| Some(procs[*i].pid) != lead);
    let mut nodes = Vec::with_capacity(procs.len());
    let mut visited = vec![false; procs.len()];
    // An explicit stack: a deep chain of forks must not overflow ours.
    let mut stack: Vec<Node> = roots
        .iter()
        .rev()
        .map(|&index| Node {
            index,
            depth: 0,
            last: false,
        })
        .collect();
    while let Some(node) = stack.pop() {
        if std::mem::replace(&mut visited[node.index], true) {
            continue;
        }
        if let Some(kids) = children.get(&procs[node.index].pid) {
            let n = kids.len();
            for (k, &index) in kids.iter().enumerate().rev() {
                stack.push(Node {
                    index,
                    depth: node.depth + 1,
                    last: n > 1 && k == n - 1,
                });
            }
        }
        nodes.push(node);
    }
    nodes
}

/// The processes in tree order (see [`walk`]), roots by pid, for `status --json`.
/// Processes in a parent loop come last, by pid, so none is dropped.
pub fn tree_order(procs: Vec<ProcessInfo>) -> Vec<ProcessInfo> {
    let mut order: Vec<usize> = walk(&procs, None).iter().map(|n| n.index).collect();
    let mut walked = vec![false; procs.len()];
    for &i in &order {
        walked[i] = true;
    }
    let mut rest: Vec<usize> = (0..procs.len()).filter(|i| !walked[*i]).collect();
    rest.sort_by_key(|i| procs[*i].pid);
    order.extend(rest);
    let mut slots: Vec<Option<ProcessInfo>> = procs.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

/// `|-` for the main process (and any other root), children two spaces deeper per level
/// with `├─`. `└─` marks the last of two or more siblings; an only child keeps `├─`, as
/// in SPEC §4's example. Command lines are printed with control characters escaped.
pub fn render(out: &mut String, procs: &[ProcessInfo], main_pid: i32) {
    for node in walk(procs, Some(main_pid)) {
        let p = &procs[node.index];
        let command = super::escape_control(&p.command);
        if node.depth == 0 {
            let _ = writeln!(out, "     |-{} {command}", p.pid);
        } else {
            let branch = if node.last { "└─" } else { "├─" };
            let indent = " ".repeat(5 + 2 * node.depth);
            let _ = writeln!(out, "{indent}{branch}{} {command}", p.pid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: i32, ppid: i32) -> ProcessInfo {
        ProcessInfo {
            pid,
            ppid,
            command: format!("cmd {pid}"),
        }
    }

    fn pids(procs: &[ProcessInfo]) -> Vec<i32> {
        procs.iter().map(|x| x.pid).collect()
    }

    #[test]
    fn tree_order_is_depth_first_with_siblings_by_pid() {
        let order = tree_order(vec![p(30, 10), p(20, 10), p(10, 1), p(25, 20), p(40, 1)]);
        assert_eq!(pids(&order), [10, 20, 25, 30, 40]);
    }

    #[test]
    fn tree_order_keeps_processes_in_a_parent_loop() {
        let order = tree_order(vec![p(6, 5), p(7, 1), p(5, 6)]);
        assert_eq!(pids(&order), [7, 5, 6]);
    }

    #[test]
    fn render_puts_the_main_process_first_whatever_the_input_order() {
        // The main pid is higher than an escaped process's after pid wrap-around.
        let procs = vec![p(12, 900), p(5, 1), p(900, 1), p(11, 900), p(13, 11)];
        let mut out = String::new();
        render(&mut out, &procs, 900);
        assert_eq!(
            out,
            "     |-900 cmd 900\n       ├─11 cmd 11\n         ├─13 cmd 13\n       └─12 cmd 12\n     |-5 cmd 5\n"
        );
    }
}
