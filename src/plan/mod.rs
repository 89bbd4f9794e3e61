//! The task DAG of a workflow: which task waits for which, the order tasks
//! can run in, the waves of tasks that can run together and the critical path.

use petgraph::Direction;
use petgraph::graph::{DiGraph, EdgeIndex, NodeIndex};
use petgraph::visit::EdgeRef;

use crate::source::Span;

/// Why one task waits for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeKind {
    /// The dependent's prompt reads the dependency's result.
    Reads,
    /// The dependent names the dependency in `after`.
    After,
}

#[derive(Debug, Clone, Copy)]
pub struct Edge {
    pub kind: EdgeKind,
    /// Where the dependency is written: the template use or the `after` entry.
    pub span: Span,
    /// `after = [name?]`: the dependent runs even if this dependency has no
    /// answer.
    pub optional: bool,
}

/// Node `i` stands for task `i`; an edge runs from a dependency to the task
/// that waits for it.
#[derive(Debug, Default)]
pub struct Plan {
    graph: DiGraph<(), Edge>,
}

impl Plan {
    #[must_use]
    pub fn new(tasks: usize) -> Self {
        let mut graph = DiGraph::with_capacity(tasks, tasks);
        for _ in 0..tasks {
            graph.add_node(());
        }
        Plan { graph }
    }

    /// Records that `dependent` waits for `dependency`. A second edge
    /// between the same two tasks is kept: each says where it comes from.
    pub fn add_edge(&mut self, dependency: usize, dependent: usize, edge: Edge) {
        self.graph
            .add_edge(NodeIndex::new(dependency), NodeIndex::new(dependent), edge);
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    /// Whether `dependent` runs even when `dependency` fails or is skipped.
    #[must_use]
    pub fn is_optional(&self, dependency: usize, dependent: usize) -> bool {
        self.graph
            .edges_connecting(NodeIndex::new(dependency), NodeIndex::new(dependent))
            .any(|edge| edge.weight().optional)
    }

    /// The distinct tasks `task` waits for.
    #[must_use]
    pub fn dependencies(&self, task: usize) -> Vec<usize> {
        self.neighbours(task, Direction::Incoming)
    }

    /// The distinct tasks that wait for `task`.
    #[must_use]
    pub fn dependents(&self, task: usize) -> Vec<usize> {
        self.neighbours(task, Direction::Outgoing)
    }

    fn neighbours(&self, task: usize, direction: Direction) -> Vec<usize> {
        let mut found: Vec<usize> = self
            .graph
            .neighbors_directed(NodeIndex::new(task), direction)
            .map(NodeIndex::index)
            .collect();
        found.sort_unstable();
        found.dedup();
        found
    }

    /// The edges into `task`, as (dependency, edge), in insertion order.
    #[must_use]
    pub fn edges_into(&self, task: usize) -> Vec<(usize, &Edge)> {
        self.edges_at(task, Direction::Incoming)
    }

    /// The edges out of `task`, as (dependent, edge), in insertion order.
    #[must_use]
    pub fn edges_from(&self, task: usize) -> Vec<(usize, &Edge)> {
        self.edges_at(task, Direction::Outgoing)
    }

    fn edges_at(&self, task: usize, direction: Direction) -> Vec<(usize, &Edge)> {
        let mut found: Vec<_> = self
            .graph
            .edges_directed(NodeIndex::new(task), direction)
            .map(|edge| {
                let other = match direction {
                    Direction::Incoming => edge.source(),
                    Direction::Outgoing => edge.target(),
                };
                (edge.id(), other.index(), edge.weight())
            })
            .collect();
        // petgraph lists a node's edges newest first.
        found.sort_unstable_by_key(|(id, _, _)| *id);
        found
            .into_iter()
            .map(|(_, other, edge)| (other, edge))
            .collect()
    }

    /// Every edge as (dependency, dependent, edge), in insertion order.
    pub fn edges(&self) -> impl Iterator<Item = (usize, usize, &Edge)> {
        self.graph
            .edge_references()
            .map(|edge| (edge.source().index(), edge.target().index(), edge.weight()))
    }

    /// Each dependency cycle once, as its edges in order (a task that reads
    /// itself is a cycle of one edge). Empty when the plan is a DAG.
    #[must_use]
    pub fn cycles(&self) -> Vec<Vec<(usize, usize, Edge)>> {
        petgraph::algo::tarjan_scc(&self.graph)
            .into_iter()
            .filter_map(|component| self.cycle_within(&component))
            .collect()
    }

    /// One cycle through the first task of a strongly connected component,
    /// found by a breadth-first search that stays inside the component.
    fn cycle_within(&self, component: &[NodeIndex]) -> Option<Vec<(usize, usize, Edge)>> {
        let start = *component.iter().min()?;
        let inside = |node: NodeIndex| component.contains(&node);
        let mut reached_by: rustc_hash::FxHashMap<NodeIndex, EdgeIndex> =
            rustc_hash::FxHashMap::default();
        let mut queue = std::collections::VecDeque::from([start]);
        while let Some(node) = queue.pop_front() {
            for edge in self.graph.edges_directed(node, Direction::Outgoing) {
                let next = edge.target();
                if !inside(next) || reached_by.contains_key(&next) {
                    continue;
                }
                reached_by.insert(next, edge.id());
                if next == start {
                    return Some(self.walk_back(start, &reached_by));
                }
                queue.push_back(next);
            }
        }
        None
    }

    fn walk_back(
        &self,
        start: NodeIndex,
        reached_by: &rustc_hash::FxHashMap<NodeIndex, EdgeIndex>,
    ) -> Vec<(usize, usize, Edge)> {
        let mut path = Vec::new();
        let mut node = start;
        loop {
            let edge = reached_by[&node];
            let (from, to) = self.graph.edge_endpoints(edge).expect("edge exists");
            path.push((from.index(), to.index(), self.graph[edge]));
            node = from;
            if node == start {
                break;
            }
        }
        path.reverse();
        path
    }

    /// The edges, among those `wanted`, whose dependent their dependency
    /// also reaches by another path: what the rest of the plan implies. Each
    /// is (dependency, dependent, edge), in insertion order. Empty unless the
    /// plan is a DAG.
    #[must_use]
    pub fn implied_edges(&self, wanted: impl Fn(&Edge) -> bool) -> Vec<(usize, usize, &Edge)> {
        let Some(order) = self.topological_order() else {
            return Vec::new();
        };
        let mut position = vec![0; self.len()];
        for (at, &task) in order.iter().enumerate() {
            position[task] = at;
        }
        // The edge whose search last visited each task: one array serves
        // every search.
        let mut visited_for = vec![usize::MAX; self.len()];
        let mut implied = Vec::new();
        for edge in self.graph.edge_references() {
            if !wanted(edge.weight()) {
                continue;
            }
            let (id, to) = (edge.id().index(), edge.target().index());
            // A path to `to` only goes through tasks placed before it.
            let mut stack = vec![edge.source()];
            'search: while let Some(node) = stack.pop() {
                for step in self.graph.edges_directed(node, Direction::Outgoing) {
                    let next = step.target().index();
                    if step.id() == edge.id()
                        || visited_for[next] == id
                        || position[next] > position[to]
                    {
                        continue;
                    }
                    if next == to {
                        implied.push((edge.source().index(), to, edge.weight()));
                        break 'search;
                    }
                    visited_for[next] = id;
                    stack.push(step.target());
                }
            }
        }
        implied
    }

    /// Tasks in an order where each comes after all it waits for; `None` when
    /// there is a cycle.
    #[must_use]
    pub fn topological_order(&self) -> Option<Vec<usize>> {
        petgraph::algo::toposort(&self.graph, None)
            .ok()
            .map(|order| order.into_iter().map(NodeIndex::index).collect())
    }

    /// Tasks grouped by depth: wave 0 waits for nothing, wave n for tasks of
    /// earlier waves only. Tasks of one wave can all run at once.
    #[must_use]
    pub fn waves(&self) -> Vec<Vec<usize>> {
        let Some(order) = self.topological_order() else {
            return Vec::new();
        };
        let mut depth = vec![0usize; self.len()];
        for &task in &order {
            for dependent in self.dependents(task) {
                depth[dependent] = depth[dependent].max(depth[task] + 1);
            }
        }
        let mut waves = vec![Vec::new(); depth.iter().max().map_or(0, |d| d + 1)];
        for (task, &d) in depth.iter().enumerate() {
            waves[d].push(task);
        }
        waves
    }

    /// For each task, the heaviest path from its start to the end of the
    /// graph, itself included, where `cost[i]` is task `i`'s expected cost.
    #[must_use]
    pub fn remaining_cost(&self, cost: &[u64]) -> Vec<u64> {
        let mut remaining = cost.to_vec();
        for &task in self.topological_order().unwrap_or_default().iter().rev() {
            let after = self
                .dependents(task)
                .into_iter()
                .map(|dependent| remaining[dependent])
                .max()
                .unwrap_or(0);
            remaining[task] = cost[task] + after;
        }
        remaining
    }

    /// The heaviest chain of tasks from a start to an end of the graph: the
    /// chain that bounds how fast the workflow can finish.
    #[must_use]
    pub fn critical_path(&self, cost: &[u64]) -> Vec<usize> {
        let remaining = self.remaining_cost(cost);
        let heaviest = |tasks: Vec<usize>| {
            tasks
                .into_iter()
                .max_by_key(|&t| (remaining[t], std::cmp::Reverse(t)))
        };
        let starts = (0..self.len())
            .filter(|&t| self.dependencies(t).is_empty())
            .collect();
        let mut path = Vec::new();
        let mut next = heaviest(starts);
        while let Some(task) = next {
            path.push(task);
            next = heaviest(self.dependents(task));
        }
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge() -> Edge {
        Edge {
            kind: EdgeKind::Reads,
            optional: false,
            span: Span::default(),
        }
    }

    /// The seed's dependency chain: A and B, then C, then D.
    fn chain() -> Plan {
        let mut plan = Plan::new(4);
        plan.add_edge(0, 2, edge());
        plan.add_edge(1, 2, edge());
        plan.add_edge(2, 3, edge());
        plan
    }

    #[test]
    fn waves_follow_depth() {
        assert_eq!(chain().waves(), vec![vec![0, 1], vec![2], vec![3]]);
    }

    #[test]
    fn critical_path_takes_the_heavier_branch() {
        assert_eq!(chain().critical_path(&[10, 30, 5, 5]), vec![1, 2, 3]);
        assert_eq!(chain().remaining_cost(&[10, 30, 5, 5]), vec![20, 40, 10, 5]);
    }

    #[test]
    fn finds_each_cycle_with_its_edges() {
        let mut plan = chain();
        plan.add_edge(3, 0, edge());
        let cycles = plan.cycles();
        assert_eq!(cycles.len(), 1);
        let path: Vec<(usize, usize)> = cycles[0].iter().map(|(a, b, _)| (*a, *b)).collect();
        assert_eq!(path, vec![(0, 2), (2, 3), (3, 0)]);
        assert!(plan.topological_order().is_none());
    }

    #[test]
    fn a_task_reading_itself_is_a_cycle() {
        let mut plan = Plan::new(1);
        plan.add_edge(0, 0, edge());
        assert_eq!(plan.cycles().len(), 1);
    }

    #[test]
    fn an_edge_another_path_implies_is_found() {
        let mut plan = chain();
        plan.add_edge(0, 3, edge());
        plan.add_edge(1, 2, edge());
        // 0 -> 3 goes around 2; the two edges 1 -> 2 imply each other;
        // 2 -> 3 is the only way to 3 from 2.
        let ends = |plan: &Plan, wanted: fn(&Edge) -> bool| -> Vec<(usize, usize)> {
            plan.implied_edges(wanted)
                .into_iter()
                .map(|(from, to, _)| (from, to))
                .collect()
        };
        assert_eq!(ends(&plan, |_| true), vec![(1, 2), (0, 3), (1, 2)]);
        assert_eq!(ends(&plan, |edge| edge.optional), vec![]);
        plan.add_edge(3, 0, edge());
        assert_eq!(ends(&plan, |_| true), vec![]);
    }
}
