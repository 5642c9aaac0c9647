package risk

import (
	"fmt"
	"math"
	"time"

	"github.com/trainyard/trainyard/runbooks"
)

// Facts are what a score is computed from.
type Facts struct {
	// History is how the runbook's last releases ended; ComponentHistory the same for
	// releases of other runbooks that shipped one of these components.
	History          Outcomes
	ComponentHistory Outcomes
	// Churn is the lines changed since the last release, as CI reports it (0: not reported).
	Churn int
	// Coverage is line coverage in percent, as CI reports it (0: not reported).
	Coverage float64
	// SchemaChanges names the components that change a database schema or storage.
	SchemaChanges []string
	// Components is how many components ship; Dependents how many other components (from
	// the runbook catalog) depend on them.
	Components int
	Dependents int
	// At is when the release is due to reach production, in the business's time zone.
	At time.Time
}

// Outcomes counts the ends of earlier releases.
type Outcomes struct {
	Total  int `json:"total"`
	Failed int `json:"failed"`
}

// Factor is one factor's part of the score.
type Factor struct {
	Name string `json:"name"`
	// Value is the factor's own measure, 0 (no risk) to 1, before weighting.
	Value  float64 `json:"value"`
	Weight float64 `json:"weight"`
	// Points is what the factor adds to the score: all factors' points sum to the score
	// (up to rounding).
	Points float64 `json:"points"`
	// Why says in words what was measured.
	Why string `json:"why"`
}

// Assessment is a release's risk.
type Assessment struct {
	Score   int      `json:"score"`
	Level   string   `json:"level"`
	Factors []Factor `json:"factors"`
}

// Levels.
const (
	Low    = "low"
	Medium = "medium"
	High   = "high"
)

// Default thresholds when the risk model names none.
const (
	DefaultMedium = 40
	DefaultHigh   = 70
)

// Constants of the factor curves. Each maps a raw fact onto 0..1 so that the weights alone
// say what matters more.
const (
	// unknownFailureRate stands in for a runbook with no finished release: new is not safe.
	unknownFailureRate = 0.25
	// churnCeiling is the churn counted as maximal; the curve is logarithmic below it, since
	// the step from 10 to 100 lines matters as much as the one from 500 to 5000.
	churnCeiling = 5000
	// unknownCoverage is the coverage assumed when CI reports none.
	unknownCoverage = 50
	// componentsCeiling: this many components and dependents together count as maximal.
	componentsCeiling = 10
)

// Score computes a release's risk. A nil model weighs every factor 1 with the default
// thresholds.
func Score(model *runbooks.RiskModel, f Facts) Assessment {
	weight := func(name string) float64 {
		if model != nil {
			if w, ok := model.Weights[name]; ok {
				return w
			}
		}
		return 1
	}
	factors := []Factor{
		failureRate(f.History, f.ComponentHistory),
		churn(f.Churn),
		coverage(f.Coverage),
		schema(f.SchemaChanges),
		components(f.Components, f.Dependents),
		timing(f.At),
	}
	var total float64
	for i := range factors {
		factors[i].Weight = weight(factors[i].Name)
		total += factors[i].Weight
	}
	var sum float64
	for i := range factors {
		if total > 0 {
			factors[i].Points = round1(100 * factors[i].Weight * factors[i].Value / total)
		}
		sum += factors[i].Points
	}
	score := int(math.Round(sum))
	score = max(0, min(100, score))
	return Assessment{Score: score, Level: Level(model, score), Factors: factors}
}

// Level is the score against the model's thresholds.
func Level(model *runbooks.RiskModel, score int) string {
	medium, high := DefaultMedium, DefaultHigh
	if model != nil {
		if model.Medium > 0 {
			medium = model.Medium
		}
		if model.High > 0 {
			high = model.High
		}
	}
	switch {
	case score >= high:
		return High
	case score >= medium:
		return Medium
	}
	return Low
}

// FactorPoints returns each factor's points by name, the shape conditions see as risk.factors.
func (a Assessment) FactorPoints() map[string]float64 {
	out := make(map[string]float64, len(a.Factors))
	for _, f := range a.Factors {
		out[f.Name] = f.Points
	}
	return out
}

func failureRate(own, comps Outcomes) Factor {
	f := Factor{Name: "changeFailureRate"}
	total, failed := own.Total+comps.Total, own.Failed+comps.Failed
	if total == 0 {
		f.Value = unknownFailureRate
		f.Why = fmt.Sprintf("no finished releases to learn from: counted as %.0f%%", unknownFailureRate*100)
		return f
	}
	f.Value = float64(failed) / float64(total)
	f.Why = fmt.Sprintf("%d of the last %d releases failed or rolled back", failed, total)
	if comps.Total > 0 {
		f.Why += fmt.Sprintf(" (%d of %d of them from other runbooks shipping these components)", comps.Failed, comps.Total)
	}
	return f
}

func churn(lines int) Factor {
	f := Factor{Name: "churn"}
	if lines <= 0 {
		f.Why = "no churn reported"
		return f
	}
	f.Value = math.Min(1, math.Log10(1+float64(lines))/math.Log10(1+churnCeiling))
	f.Why = fmt.Sprintf("%d lines changed", lines)
	return f
}

func coverage(pct float64) Factor {
	f := Factor{Name: "coverage"}
	if pct <= 0 {
		f.Value = float64(100-unknownCoverage) / 100
		f.Why = fmt.Sprintf("no coverage reported: counted as %d%%", unknownCoverage)
		return f
	}
	pct = math.Min(100, pct)
	f.Value = (100 - pct) / 100
	f.Why = fmt.Sprintf("%.1f%% line coverage", pct)
	return f
}

func schema(changes []string) Factor {
	f := Factor{Name: "schemaChange", Why: "no schema or storage change"}
	if len(changes) > 0 {
		f.Value = 1
		f.Why = fmt.Sprintf("schema or storage change in %s", joinList(changes))
	}
	return f
}

func components(n, dependents int) Factor {
	f := Factor{Name: "components"}
	// One component with nothing depending on it is the least a release can be.
	f.Value = math.Min(1, float64(max(0, n-1)+dependents)/componentsCeiling)
	f.Why = fmt.Sprintf("%d component(s), %d dependent(s)", n, dependents)
	return f
}

// timing scores when the release reaches production: weekends and the last days of a quarter
// are when fewer people are around and more is at stake.
func timing(at time.Time) Factor {
	f := Factor{Name: "timing", Why: "a working day"}
	if at.IsZero() {
		f.Why = "time not known"
		return f
	}
	day := at.Weekday()
	switch {
	case day == time.Saturday || day == time.Sunday:
		f.Value, f.Why = 1, "on a weekend ("+day.String()+")"
	case endOfQuarter(at):
		f.Value, f.Why = 0.8, "in the last week of a quarter"
	case day == time.Friday && at.Hour() >= 15:
		f.Value, f.Why = 0.7, "on a Friday afternoon"
	case at.Hour() < 8 || at.Hour() >= 18:
		f.Value, f.Why = 0.5, fmt.Sprintf("outside working hours (%02d:%02d)", at.Hour(), at.Minute())
	}
	return f
}

func endOfQuarter(t time.Time) bool {
	if t.Month()%3 != 0 {
		return false
	}
	last := time.Date(t.Year(), t.Month()+1, 0, 0, 0, 0, 0, t.Location()).Day()
	return t.Day() > last-7
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

func joinList(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += ", "
		}
		out += s
	}
	return out
}
