//! Token ids grouped by token: the order in which the embedding table's gradient sums rows, the
//! same on the CPU ([`crate::nodes::embedding`]) and on CUDA (`cuda_ops::embedding_backward`), so
//! that both give the same gradient bit for bit.

/// The positions of a batch of ids grouped by token: the positions of `tokens[s]` are
/// `order[starts[s]..starts[s + 1]]`, ascending.
#[derive(Debug, PartialEq)]
pub struct TokenGroups {
    /// Positions, sorted by token, ascending within a token.
    pub order: Vec<u32>,
    /// Where each token's positions start in `order`, and `order.len()` last.
    pub starts: Vec<u32>,
    /// The distinct tokens, ascending.
    pub tokens: Vec<u32>,
}

impl TokenGroups {
    /// Groups `ids` by token.
    pub fn of(ids: &[u32]) -> Self {
        let mut order: Vec<u32> = (0..ids.len() as u32).collect();
        order.sort_by_key(|&p| ids[p as usize]); // stable: positions stay ascending
        let (mut starts, mut tokens) = (Vec::new(), Vec::new());
        for (i, &p) in order.iter().enumerate() {
            let token = ids[p as usize];
            if tokens.last() != Some(&token) {
                tokens.push(token);
                starts.push(i as u32);
            }
        }
        starts.push(order.len() as u32);
        Self {
            order,
            starts,
            tokens,
        }
    }

    /// Each distinct token with its positions.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &[u32])> {
        self.tokens.iter().enumerate().map(|(s, &token)| {
            let (a, e) = (self.starts[s] as usize, self.starts[s + 1] as usize);
            (token, &self.order[a..e])
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_list_each_tokens_positions_in_order() {
        let groups = TokenGroups::of(&[5, 2, 5, 9, 2, 5]);
        assert_eq!(groups.tokens, vec![2, 5, 9]);
        assert_eq!(groups.order, vec![1, 4, 0, 2, 5, 3]);
        assert_eq!(groups.starts, vec![0, 2, 5, 6]);
        let empty = TokenGroups::of(&[]);
        assert!(empty.tokens.is_empty() && empty.order.is_empty());
        assert_eq!(empty.starts, vec![0]);
    }
}
