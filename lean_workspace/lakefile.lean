import Lake
open Lake DSL

/-! The Moneyball model: definitions shared by the Lean backend and the Z3 backend of HMS.
Claims about them live in `claims/*.json` (data, so false claims do not break the build). -/

package moneyball where
  leanOptions := #[⟨`autoImplicit, false⟩]

require mathlib from git
  "https://github.com/leanprover-community/mathlib4" @ "v4.15.0"

@[default_target]
lean_lib Moneyball where
