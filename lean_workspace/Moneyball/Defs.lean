import Mathlib

/-!
# The Moneyball-Buffett model

Definitions of `/work/shared/moneyball/FORMULAS.md`, with exactly its names and argument orders.
All quantities are real numbers; decimal literals are exact rationals (`0.4 = 2/5`).
`n` is the number of sectors or policies and vectors are `Fin n → ℝ`.

HMS reads these `def`s (its Z3 backend elaborates the same bodies); the claims about them are
data in `claims/moneyball.json`, never axioms here.
-/

open BigOperators Finset

noncomputable section

namespace Moneyball

/-- Weighted Agreement Return: `Σᵢ wᵢ·aᵢ·dᵢ` (weights `wᵢ`, agreement impacts `aᵢ`,
deficit-reduction potentials `dᵢ`). -/
def warScore {n : ℕ} (w a d : Fin n → ℝ) : ℝ :=
  ∑ i, w i * a i * d i

/-- Raw deficit reduction `Σⱼ pⱼ·cⱼ·rⱼ` (policy effects, confidences, implementation rates). -/
def rawReduction {n : ℕ} (p c r : Fin n → ℝ) : ℝ :=
  ∑ j, p j * c j * r j

/-- Deficit Reduction Potential `B − rawReduction·M` (baseline deficit `B`, Buffett margin of
safety `M`). -/
def drp {n : ℕ} (B : ℝ) (p c r : Fin n → ℝ) (M : ℝ) : ℝ :=
  B - rawReduction p c r * M

/-- Sector Prioritization Score `0.4·D + 0.3·J + 0.2·G + 0.1·E`. -/
def sps (D J G E : ℝ) : ℝ :=
  0.4 * D + 0.3 * J + 0.2 * G + 0.1 * E

/-- Financial stability `1 − (Σₖ sₖ·qₖ·mₖ) / maxRisk` (severity, probability, systemic impact). -/
def financialStability {n : ℕ} (s q m : Fin n → ℝ) (maxRisk : ℝ) : ℝ :=
  1 - (∑ k, s k * q k * m k) / maxRisk

/-- Market health `0.3·L + 0.3·T + 0.2·P + 0.2·R`. -/
def marketHealth (L T P R : ℝ) : ℝ :=
  0.3 * L + 0.3 * T + 0.2 * P + 0.2 * R

/-- Business support `0.35·A + 0.25·T + 0.25·M + 0.15·R`. -/
def businessSupport (A T M R : ℝ) : ℝ :=
  0.35 * A + 0.25 * T + 0.25 * M + 0.15 * R

/-- Unified model `0.3·EI + 0.3·FS + 0.2·MH + 0.2·BS`. -/
def unifiedModel (EI FS MH BS : ℝ) : ℝ :=
  0.3 * EI + 0.3 * FS + 0.2 * MH + 0.2 * BS

/-- Dashboard WAR on a 0–5 scale: market access, tariff, non-tariff, regulatory. -/
def warDashboard (m t n r : ℝ) : ℝ :=
  0.30 * m + 0.25 * t + 0.25 * n + 0.20 * r

/-- Compounding projection of a deficit reduction: `B·(1 − (1 − r)^Y)` over `Y` years. -/
def drpProjected (B r : ℝ) (Y : ℕ) : ℝ :=
  B * (1 - (1 - r) ^ Y)

/-- Buffett's margin of safety: `0.7·x`. -/
def conservative (x : ℝ) : ℝ :=
  0.7 * x

/-- The SPS weights sum to one (over ℝ; as IEEE doubles they do not). -/
theorem sps_weights_sum : (0.4 : ℝ) + 0.3 + 0.2 + 0.1 = 1 := by
  norm_num

end Moneyball

end
