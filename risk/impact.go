package risk

import (
	"fmt"
	"math"
	"slices"

	"github.com/trainyard/trainyard/runbooks"
)

// Impact is how much of the business a release touches, from the runbook catalog's
// dependency mapping: what depends on the shipped components, the capabilities touched, the
// runbook's criticality and its data classification. A CAB threshold is compared with Score.
type Impact struct {
	Score        int      `json:"score"`
	Dependents   []string `json:"dependents,omitempty"`
	Capabilities []string `json:"capabilities,omitempty"`
	Factors      []Factor `json:"factors"`
}

// Ceilings of the impact factors: this many dependents or capabilities count as maximal.
const (
	dependentsCeiling   = 10
	capabilitiesCeiling = 5
)

// ScoreImpact scores a release of rb shipping components, against catalog (every runbook
// the server knows, rb among them). Dependents are "<runbook>/<component>" of other runbooks
// whose components list a shipped component in dependsOn, sorted.
func ScoreImpact(catalog []runbooks.Runbook, rb runbooks.Runbook, components []string) Impact {
	var im Impact
	caps := slices.Clone(rb.Capabilities)
	for _, other := range catalog {
		if other.Name == rb.Name || other.Scope == nil {
			continue
		}
		touched := false
		for _, c := range other.Scope.Components {
			for _, dep := range c.DependsOn {
				if slices.Contains(components, dep) {
					im.Dependents = append(im.Dependents, other.Name+"/"+c.Name)
					touched = true
					break
				}
			}
		}
		if touched {
			caps = append(caps, other.Capabilities...)
		}
	}
	slices.Sort(im.Dependents)
	im.Dependents = slices.Compact(im.Dependents)
	slices.Sort(caps)
	im.Capabilities = slices.Compact(caps)

	im.Factors = []Factor{
		{Name: "dependents", Value: math.Min(1, float64(len(im.Dependents))/dependentsCeiling),
			Why: fmt.Sprintf("%d component(s) of other runbooks depend on what ships", len(im.Dependents))},
		{Name: "capabilities", Value: math.Min(1, float64(len(im.Capabilities))/capabilitiesCeiling),
			Why: fmt.Sprintf("%d business capabilities touched", len(im.Capabilities))},
		tierFactor(rb.Tier),
		classificationFactor(rb.DataClassification),
	}
	var sum float64
	for i := range im.Factors {
		im.Factors[i].Weight = 1
		im.Factors[i].Points = round1(100 * im.Factors[i].Value / float64(len(im.Factors)))
		sum += im.Factors[i].Points
	}
	im.Score = max(0, min(100, int(math.Round(sum))))
	return im
}

func tierFactor(tier int) Factor {
	f := Factor{Name: "criticality", Why: "no tier set"}
	if tier >= 1 && tier <= 4 {
		// Tier 1 is the most critical; tier 4 counts as nothing at stake.
		f.Value = float64(4-tier) / 3
		f.Why = fmt.Sprintf("tier %d", tier)
	}
	return f
}

func classificationFactor(c string) Factor {
	values := map[string]float64{"public": 0, "internal": 0.25, "pii": 0.75, "pci": 1, "phi": 1}
	f := Factor{Name: "dataClassification", Why: "no data classification set"}
	if v, ok := values[c]; ok {
		f.Value, f.Why = v, c+" data"
	}
	return f
}
