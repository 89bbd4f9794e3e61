//! The layered DAG the benchmarks run: its shape, its `.wf` source and a
//! lower bound on its makespan.

/// The DAG's shape: each task's agent and the tasks its prompt reads.
pub(crate) struct Dag {
    agents: usize,
    agent: Vec<usize>,
    reads: Vec<Vec<usize>>,
}

impl Dag {
    /// `layers` layers of `width`; task `i` belongs to agent `i % agents`;
    /// a task past the first layer reads 1–3 distinct tasks of the layer
    /// before, chosen by a fixed LCG so every run sees the same graph.
    pub(crate) fn layered(layers: usize, width: usize, agents: usize) -> Dag {
        let mut state: u64 = 0x5eed;
        let mut next = |bound: usize| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize % bound
        };
        let tasks = layers * width;
        let mut reads = Vec::with_capacity(tasks);
        for i in 0..tasks {
            let layer = i / width;
            let mut chosen: Vec<usize> = Vec::new();
            if layer > 0 {
                let count = 1 + next(3);
                while chosen.len() < count {
                    let pick = (layer - 1) * width + next(width);
                    if !chosen.contains(&pick) {
                        chosen.push(pick);
                    }
                }
            }
            reads.push(chosen);
        }
        Dag {
            agents,
            agent: (0..tasks).map(|i| i % agents).collect(),
            reads,
        }
    }

    /// Workflow `layered` (input `record`), agents `A0`… on models
    /// `{models}0`…, each taking `slots` requests at once (unlimited when
    /// `None`).
    pub(crate) fn source(&self, slots: Option<usize>, models: &str) -> String {
        let mut text = String::new();
        for a in 0..self.agents {
            let limit = slots.map_or(String::new(), |n| format!("  max_concurrency = {n}"));
            text.push_str(&format!(
                "agent A{a} {{ model = \"{models}{a}\"{limit} }}\n"
            ));
        }
        text.push_str("\nworkflow layered {\n  input record: text\n\n");
        let mut read = vec![false; self.reads.len()];
        for (i, reads) in self.reads.iter().enumerate() {
            let context: String = if reads.is_empty() {
                "      Record: {{ record }}\n".into()
            } else {
                reads
                    .iter()
                    .map(|&r| {
                        read[r] = true;
                        format!("      Finding: {{{{ t{r} }}}}\n")
                    })
                    .collect()
            };
            text.push_str(&format!(
                "  task t{i} -> A{agent} {{\n    max_tokens = 64\n    prompt = \"\"\"\n      \
                 Step {i}: combine the findings below into one line.\n{context}    \"\"\"\n  }}\n",
                agent = self.agent[i],
            ));
        }
        // The output reads every task no other task reads, so none is unused.
        let unread: Vec<String> = (0..self.reads.len())
            .filter(|&i| !read[i])
            .map(|i| format!("{{{{ t{i} }}}}"))
            .collect();
        text.push_str(&format!("  output = \"{}\"\n}}\n", unread.join("\\n")));
        text
    }

    /// A lower bound on the makespan when every task takes at least
    /// `task_ms`. `depth[i]` is the number of tasks on the longest chain
    /// ending before `i`, `height[i]` on the longest chain starting after it.
    /// The critical path is one bound. With `s` slots per agent, take any
    /// agent and any `d`, `h`: its `n` tasks with depth ≥ d and height ≥ h
    /// cannot start before `d·task_ms`, must be done by makespan − `h·task_ms`,
    /// and at most `s` run at once, so they need `ceil(n/s)·task_ms` between:
    /// makespan ≥ (d + ceil(n/s) + `h)·task_ms`. (Summing per-layer bounds over
    /// the layers would not be valid: layers overlap in time.)
    pub(crate) fn lower_bound_ms(&self, slots: Option<usize>, task_ms: u64) -> u64 {
        let tasks = self.reads.len();
        let mut depth = vec![0usize; tasks];
        for i in 0..tasks {
            depth[i] = self.reads[i]
                .iter()
                .map(|&r| depth[r] + 1)
                .max()
                .unwrap_or(0);
        }
        let mut height = vec![0usize; tasks];
        for i in (0..tasks).rev() {
            for &r in &self.reads[i] {
                height[r] = height[r].max(height[i] + 1);
            }
        }
        let critical = (0..tasks)
            .map(|i| depth[i] + 1 + height[i])
            .max()
            .unwrap_or(0);
        let mut bound = critical;
        if let Some(s) = slots {
            let longest = depth.iter().max().copied().unwrap_or(0);
            for a in 0..self.agents {
                for d in 0..=longest {
                    for h in 0..=longest {
                        let n = (0..tasks)
                            .filter(|&i| self.agent[i] == a && depth[i] >= d && height[i] >= h)
                            .count();
                        if n > 0 {
                            bound = bound.max(d + n.div_ceil(s) + h);
                        }
                    }
                }
            }
        }
        bound as u64 * task_ms
    }
}
