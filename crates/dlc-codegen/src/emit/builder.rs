//! The builder layer every emitter shares: loops, buffer addressing, loads and
//! stores (bounds-checked in checked mode), constants and the status word.
//!
//! Every kernel function has the signature
//! `extern "C" fn(table: *const *mut u8, start: i64, end: i64, scratch: *mut u8)`:
//! `table[0]` points to the run's status word, `table[1 + b]` to buffer `b`;
//! `start..end` is the kernel's share of its parallel loop, and `scratch` is
//! private memory of the calling thread (packing buffers), addressed as the
//! argument after the outputs.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{BlockArg, InstBuilder, MemFlagsData, Type, Value, types};
use cranelift_frontend::FunctionBuilder;

/// Status codes a kernel can leave in the status word (0 = success).
pub mod status {
    /// A memory access fell outside its buffer (checked mode only).
    pub const OUT_OF_BOUNDS: u32 = 1;
    /// An index (gather, embedding) was outside the indexed axis.
    pub const BAD_INDEX: u32 = 2;
    /// A class label (cross-entropy) was outside `0..classes`.
    pub const BAD_LABEL: u32 = 4;
}

/// Byte offset of the sink inside the status block: checked-mode accesses that
/// would fall outside their buffer go here instead.
pub const STATUS_SINK: usize = 64;

/// Size of the status block: the status word, then the sink (room for any one access).
pub const STATUS_BYTES: usize = STATUS_SINK + 64;

/// The pointer type (x86-64 and aarch64).
pub const PTR: Type = types::I64;

/// Flags for every buffer access: in bounds by construction (or checked), not aligned.
pub fn mem() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

/// A kernel function under construction.
pub struct KernelBuilder<'a> {
    /// The underlying Cranelift builder, for instructions the layer does not wrap.
    pub b: FunctionBuilder<'a>,
    args: Vec<Value>,
    arg_bytes: Vec<usize>,
    checked: bool,
    status: Value,
    /// First index of this call's share of the parallel loop.
    pub start: Value,
    /// One past the last index of this call's share.
    pub end: Value,
}

impl<'a> KernelBuilder<'a> {
    /// Starts the function body: loads the status pointer and the base pointer
    /// of every argument buffer (`bufs` gives each argument's buffer index and
    /// byte size, inputs then outputs); the thread's scratch block of
    /// `scratch_bytes` becomes the last argument.
    pub fn new(
        mut b: FunctionBuilder<'a>,
        bufs: &[(usize, usize)],
        scratch_bytes: usize,
        checked: bool,
    ) -> KernelBuilder<'a> {
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        b.seal_block(entry);
        let params = b.block_params(entry).to_vec();
        let (table, start, end, scratch) = (params[0], params[1], params[2], params[3]);
        let flags = mem().with_readonly();
        let status = b.ins().load(PTR, flags, table, 0);
        let mut args: Vec<Value> = bufs
            .iter()
            .map(|&(buf, _)| b.ins().load(PTR, flags, table, (8 * (1 + buf)) as i32))
            .collect();
        args.push(scratch);
        let mut arg_bytes: Vec<usize> = bufs.iter().map(|&(_, bytes)| bytes).collect();
        arg_bytes.push(scratch_bytes);
        KernelBuilder {
            b,
            args,
            arg_bytes,
            checked,
            status,
            start,
            end,
        }
    }

    /// Ends the function and hands the builder back for finalisation.
    pub fn finish(mut self) -> FunctionBuilder<'a> {
        self.b.ins().return_(&[]);
        self.b
    }

    /// An i64 constant.
    pub fn int(&mut self, v: i64) -> Value {
        self.b.ins().iconst(types::I64, v)
    }

    /// An f32 constant, scalar or splat to f32x4.
    pub fn f32c(&mut self, v: f32, vector: bool) -> Value {
        let s = self.b.ins().f32const(v);
        if vector {
            self.b.ins().splat(types::F32X4, s)
        } else {
            s
        }
    }

    /// `a * k + c` on i64 values with constant `k` and `c` (skipping no-op parts).
    pub fn affine(&mut self, a: Value, k: usize, c: usize) -> Value {
        let m = match k {
            0 => return self.int(c as i64),
            1 => a,
            _ => self.b.ins().imul_imm_s(a, k as i64),
        };
        if c == 0 {
            m
        } else {
            self.b.ins().iadd_imm_s(m, c as i64)
        }
    }

    /// `base + a * k` on i64 values.
    pub fn add_scaled(&mut self, base: Value, a: Value, k: usize) -> Value {
        match k {
            0 => base,
            1 => self.b.ins().iadd(base, a),
            _ => {
                let m = self.b.ins().imul_imm_s(a, k as i64);
                self.b.ins().iadd(base, m)
            }
        }
    }

    /// A counted loop `for i in (lo..hi).step_by(step)` carrying `carried` values.
    ///
    /// `body` receives the induction variable and the carried values and returns
    /// their next values; the loop returns the final carried values. The loop
    /// body ends with a single jump to the header (good for load folding).
    pub fn for_range(
        &mut self,
        lo: Value,
        hi: Value,
        step: i64,
        carried: &[Value],
        body: impl FnOnce(&mut Self, Value, &[Value]) -> Vec<Value>,
    ) -> Vec<Value> {
        let header = self.b.create_block();
        let body_block = self.b.create_block();
        let exit = self.b.create_block();
        self.b.append_block_param(header, types::I64);
        for &c in carried {
            let ty = self.b.func.dfg.value_type(c);
            self.b.append_block_param(header, ty);
        }
        let mut args = vec![BlockArg::Value(lo)];
        args.extend(carried.iter().map(|&c| BlockArg::Value(c)));
        self.b.ins().jump(header, &args);

        self.b.switch_to_block(header);
        let params = self.b.block_params(header).to_vec();
        let i = params[0];
        // The exit is the taken side of the branch: Cranelift 0.135 hoists loop
        // invariants while walking the dominator tree with a stack of enclosing
        // loops, and an exit block visited before the body pops the loop off
        // that stack, so with the body on the not-taken side nothing computed
        // before a loop would be hoisted out of it (a softmax row's 1/sum would
        // be recomputed for every vector).
        let done = if step > 0 {
            self.b.ins().icmp(IntCC::SignedGreaterThanOrEqual, i, hi)
        } else {
            self.b.ins().icmp(IntCC::SignedLessThanOrEqual, i, hi)
        };
        self.b.ins().brif(done, exit, &[], body_block, &[]);

        self.b.switch_to_block(body_block);
        self.b.seal_block(body_block);
        let next = body(self, i, &params[1..]);
        assert_eq!(
            next.len(),
            carried.len(),
            "loop body must return every carried value"
        );
        let i_next = self.b.ins().iadd_imm_s(i, step);
        let mut args = vec![BlockArg::Value(i_next)];
        args.extend(next.iter().map(|&c| BlockArg::Value(c)));
        self.b.ins().jump(header, &args);
        self.b.seal_block(header);

        self.b.switch_to_block(exit);
        self.b.seal_block(exit);
        params[1..].to_vec()
    }

    /// `for i in 0..n` with a constant trip count, carrying values.
    pub fn for_n(
        &mut self,
        n: usize,
        carried: &[Value],
        body: impl FnOnce(&mut Self, Value, &[Value]) -> Vec<Value>,
    ) -> Vec<Value> {
        let lo = self.int(0);
        let hi = self.int(n as i64);
        self.for_range(lo, hi, 1, carried, body)
    }

    /// Runs `then` only when `cond` (an i8 truth value) is non-zero.
    pub fn if_then(&mut self, cond: Value, then: impl FnOnce(&mut Self)) {
        let then_block = self.b.create_block();
        let join = self.b.create_block();
        self.b.ins().brif(cond, then_block, &[], join, &[]);
        self.b.switch_to_block(then_block);
        self.b.seal_block(then_block);
        then(self);
        self.b.ins().jump(join, &[]);
        self.b.switch_to_block(join);
        self.b.seal_block(join);
    }

    /// Runs `then` when `cond` (an i8 truth value) is non-zero, else `otherwise`.
    pub fn if_else(
        &mut self,
        cond: Value,
        then: impl FnOnce(&mut Self),
        otherwise: impl FnOnce(&mut Self),
    ) {
        let then_block = self.b.create_block();
        let else_block = self.b.create_block();
        let join = self.b.create_block();
        self.b.ins().brif(cond, then_block, &[], else_block, &[]);
        self.b.switch_to_block(then_block);
        self.b.seal_block(then_block);
        then(self);
        self.b.ins().jump(join, &[]);
        self.b.switch_to_block(else_block);
        self.b.seal_block(else_block);
        otherwise(self);
        self.b.ins().jump(join, &[]);
        self.b.switch_to_block(join);
        self.b.seal_block(join);
    }

    /// Whether elements `first .. first + count` (of `elem_bytes` each) lie inside
    /// argument `arg` (an i8 truth value); flags the status word when not. For
    /// checked mode around calls into native code, which cannot check themselves.
    pub fn in_bounds(
        &mut self,
        arg: usize,
        first: Value,
        count: Value,
        elem_bytes: usize,
    ) -> Value {
        let end = self.b.ins().iadd(first, count);
        let end = self.b.ins().imul_imm_s(end, elem_bytes as i64);
        let size = self.arg_bytes[arg] as i64;
        let ok_end = self
            .b
            .ins()
            .icmp_imm_s(IntCC::SignedLessThanOrEqual, end, size);
        let ok_start = self
            .b
            .ins()
            .icmp_imm_s(IntCC::SignedGreaterThanOrEqual, first, 0);
        let ok = self.b.ins().band(ok_end, ok_start);
        let bad = self.b.ins().bxor_imm_s(ok, 1);
        let bad = self.b.ins().uextend(types::I32, bad);
        let code = self.b.ins().imul_imm_s(bad, status::OUT_OF_BOUNDS as i64);
        self.raise_value(code);
        ok
    }

    /// The address of element `index` (of `elem_bytes` each) of argument `arg`,
    /// for an access of `access_bytes`. In checked mode an access outside the
    /// buffer is redirected to the status block's sink and flags the status word,
    /// so even a miscompiled kernel cannot touch memory outside its buffers.
    pub fn addr(
        &mut self,
        arg: usize,
        index: Value,
        elem_bytes: usize,
        access_bytes: usize,
    ) -> Value {
        self.addr_at(arg, index, elem_bytes, 0, access_bytes).0
    }

    /// Like [`KernelBuilder::addr`] for element `index` plus `offset` bytes;
    /// returns the base address and the displacement to put in the access.
    fn addr_at(
        &mut self,
        arg: usize,
        index: Value,
        elem_bytes: usize,
        offset: i32,
        access_bytes: usize,
    ) -> (Value, i32) {
        let off = if elem_bytes == 1 {
            index
        } else {
            self.b.ins().imul_imm_s(index, elem_bytes as i64)
        };
        let good = self.b.ins().iadd(self.args[arg], off);
        if !self.checked {
            return (good, offset);
        }
        let off = self.b.ins().iadd_imm_s(off, offset as i64);
        let good = self.b.ins().iadd_imm_s(good, offset as i64);
        let limit = self.arg_bytes[arg] as i64 - access_bytes as i64;
        let ok = if limit < 0 {
            self.b.ins().iconst(types::I8, 0)
        } else {
            self.b
                .ins()
                .icmp_imm_u(IntCC::UnsignedLessThanOrEqual, off, limit)
        };
        let sink = self.b.ins().iadd_imm_s(self.status, STATUS_SINK as i64);
        let addr = self.b.ins().select(ok, good, sink);
        let bad = self.b.ins().bxor_imm_s(ok, 1);
        let bad = self.b.ins().uextend(types::I32, bad);
        let code = self.b.ins().imul_imm_s(bad, status::OUT_OF_BOUNDS as i64);
        self.raise_value(code);
        (addr, 0)
    }

    /// Loads `ty` at element `index` of `arg` plus `offset` bytes (the offset
    /// becomes the instruction's displacement).
    pub fn load_at(
        &mut self,
        ty: Type,
        arg: usize,
        index: Value,
        elem_bytes: usize,
        offset: i32,
    ) -> Value {
        self.load_flagged(mem(), ty, arg, index, elem_bytes, offset)
    }

    /// [`Self::load_at`] as a pure load (read-only, movable): with
    /// `opt_level=speed` Cranelift places it at its first use, like arithmetic,
    /// and may merge it with an identical load. A side-effecting load stays
    /// where it was emitted while the arithmetic it feeds sinks to its own
    /// first use, so in a chain of multiply-adds every loaded value is live at
    /// once. Only for locations nothing writes while the address is live: an
    /// address that varies in the innermost loop (a loop-invariant one would be
    /// hoisted out of the loop, above writes inside it).
    pub fn load_pure_at(
        &mut self,
        ty: Type,
        arg: usize,
        index: Value,
        elem_bytes: usize,
        offset: i32,
    ) -> Value {
        let flags = mem().with_readonly().with_can_move();
        self.load_flagged(flags, ty, arg, index, elem_bytes, offset)
    }

    /// The load of [`Self::load_at`] with memory flags `flags`.
    fn load_flagged(
        &mut self,
        flags: MemFlagsData,
        ty: Type,
        arg: usize,
        index: Value,
        elem_bytes: usize,
        offset: i32,
    ) -> Value {
        let (a, off) = self.addr_at(arg, index, elem_bytes, offset, ty.bytes() as usize);
        self.b.ins().load(ty, flags, a, off)
    }

    /// Stores `value` at element `index` of `arg` plus `offset` bytes.
    pub fn store_at(
        &mut self,
        value: Value,
        arg: usize,
        index: Value,
        elem_bytes: usize,
        offset: i32,
    ) {
        let ty = self.b.func.dfg.value_type(value);
        let (a, off) = self.addr_at(arg, index, elem_bytes, offset, ty.bytes() as usize);
        self.b.ins().store(mem(), value, a, off);
    }

    /// The base address of argument `arg` (for calls into native code; the callee
    /// must stay within the buffer, which checked mode cannot verify).
    pub fn arg_base(&self, arg: usize) -> Value {
        self.args[arg]
    }

    /// The byte size of argument `arg`.
    pub fn arg_bytes(&self, arg: usize) -> usize {
        self.arg_bytes[arg]
    }

    /// Whether accesses are bounds-checked.
    pub fn checked(&self) -> bool {
        self.checked
    }

    /// Loads a value of type `ty` at element `index` of argument `arg`.
    pub fn load(&mut self, ty: Type, arg: usize, index: Value, elem_bytes: usize) -> Value {
        let a = self.addr(arg, index, elem_bytes, ty.bytes() as usize);
        self.b.ins().load(ty, mem(), a, 0)
    }

    /// Stores `value` at element `index` of argument `arg`.
    pub fn store(&mut self, value: Value, arg: usize, index: Value, elem_bytes: usize) {
        let ty = self.b.func.dfg.value_type(value);
        let a = self.addr(arg, index, elem_bytes, ty.bytes() as usize);
        self.b.ins().store(mem(), value, a, 0);
    }

    /// ORs a status code into the run's status word.
    pub fn raise(&mut self, code: u32) {
        let c = self.b.ins().iconst(types::I32, code as i64);
        self.raise_value(c);
    }

    /// ORs an i32 value into the status word.
    pub fn raise_value(&mut self, code: Value) {
        let old = self.b.ins().load(types::I32, mem(), self.status, 0);
        let new = self.b.ins().bor(old, code);
        self.b.ins().store(mem(), new, self.status, 0);
    }
}
