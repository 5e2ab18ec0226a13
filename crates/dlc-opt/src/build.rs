//! Shape-checked construction: every node a rule adds is typed before it is added.
//!
//! [`Builder::add`] computes a node's [`Data`] from its children and refuses nodes
//! whose types cannot be inferred; [`TypedPattern`] instantiates an egg pattern
//! bottom-up the same way and unions the result with the matched class only when
//! its types equal the class's types. So a rewrite that would change a shape (such
//! as `x * 1` → `x` when the `1` broadcasts `x` to a larger shape) is not applied,
//! and a rule cannot make the e-graph ill-typed.

use dlc_ir::{Op, TensorType};
use egg::{Applier, ENodeOrVar, Id, Language, Pattern, PatternAst, Subst, Symbol, Var};

use crate::analysis::{Data, TensorAnalysis, TensorGraph};
use crate::lang::{Attr, Tensor};

/// Adds typed nodes to an e-graph.
pub struct Builder<'a> {
    /// The e-graph being extended.
    pub egraph: &'a mut TensorGraph,
}

impl Builder<'_> {
    /// Adds `node` if its types can be inferred from its children.
    pub fn add(&mut self, node: Tensor) -> Option<Id> {
        let data = {
            let children: Vec<&Data> = node
                .children()
                .iter()
                .map(|&c| &self.egraph[c].data)
                .collect();
            self.egraph.analysis.compute(&node, &children)
        };
        let ok = data.attr.is_some() || !data.types.is_empty();
        ok.then(|| self.egraph.add(node))
    }

    /// Adds the attribute leaf for `op`.
    pub fn attr(&mut self, op: Op) -> Id {
        let k = self.egraph.analysis.intern_op(op);
        self.egraph.add(Tensor::Attr(Attr::Op(k)))
    }

    /// Adds a constant of type `ty` with the given values (one value fills the shape).
    pub fn constant(&mut self, ty: TensorType, values: &[f64]) -> Id {
        let k = self.egraph.analysis.intern_const(ty, values);
        self.egraph.add(Tensor::Source(k))
    }

    /// Adds `op` applied to `operands` (as a named node when the language has one).
    pub fn op(&mut self, op: Op, operands: &[Id]) -> Option<Id> {
        let attr = self.attr(op.clone());
        let node = match Tensor::named(&op, attr, operands) {
            Some(n) => n,
            None => Tensor::Other(self.egraph.analysis.intern_op(op), operands.to_vec()),
        };
        self.add(node)
    }

    /// The data of a class.
    pub fn data(&self, id: Id) -> &Data {
        &self.egraph[id].data
    }

    /// Unions `new` into `class` if their types agree; returns whether it changed.
    pub fn union_checked(&mut self, class: Id, new: Id) -> bool {
        self.egraph[class].data.types == self.egraph[new].data.types
            && self.egraph.union(class, new)
    }
}

/// An egg pattern used as a right-hand side, instantiated with type checking.
pub struct TypedPattern {
    ast: PatternAst<Tensor>,
    vars: Vec<Var>,
}

impl TypedPattern {
    /// Wraps a parsed pattern.
    pub fn new(pattern: Pattern<Tensor>) -> TypedPattern {
        TypedPattern {
            vars: pattern.vars(),
            ast: pattern.ast,
        }
    }
}

/// Computes the data of every pattern node bottom-up without adding anything;
/// `None` if a variable is unbound or some node cannot be typed.
fn plan(ast: &PatternAst<Tensor>, egraph: &TensorGraph, subst: &Subst) -> Option<Vec<Data>> {
    let an: &TensorAnalysis = &egraph.analysis;
    let mut data: Vec<Data> = Vec::with_capacity(ast.len());
    for node in ast.as_ref() {
        let d = match node {
            ENodeOrVar::Var(v) => egraph[*subst.get(*v)?].data.clone(),
            ENodeOrVar::ENode(n) => {
                let children: Vec<&Data> = n
                    .children()
                    .iter()
                    .map(|&c| &data[usize::from(c)])
                    .collect();
                let d = an.compute(n, &children);
                if d.attr.is_none() && d.types.is_empty() {
                    return None;
                }
                d
            }
        };
        data.push(d);
    }
    Some(data)
}

impl Applier<Tensor, TensorAnalysis> for TypedPattern {
    fn apply_one(
        &self,
        egraph: &mut TensorGraph,
        eclass: Id,
        subst: &Subst,
        _ast: Option<&PatternAst<Tensor>>,
        rule: Symbol,
    ) -> Vec<Id> {
        let Some(data) = plan(&self.ast, egraph, subst) else {
            return vec![];
        };
        if data.last().map(|d| &d.types) != Some(&egraph[eclass].data.types) {
            return vec![];
        }
        let mut ids: Vec<Id> = Vec::with_capacity(self.ast.len());
        for node in self.ast.as_ref() {
            let id = match node {
                ENodeOrVar::Var(v) => subst[*v],
                ENodeOrVar::ENode(n) => egraph.add(n.clone().map_children(|c| ids[usize::from(c)])),
            };
            ids.push(id);
        }
        let root = *ids.last().expect("patterns are not empty");
        if egraph.union(eclass, root) {
            egraph.analysis.rewritten.push((rule, eclass));
            vec![eclass]
        } else {
            vec![]
        }
    }

    fn vars(&self) -> Vec<Var> {
        self.vars.clone()
    }
}
