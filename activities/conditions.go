package activities

import (
	"strings"

	"github.com/trainyard/trainyard/risk"
	"github.com/trainyard/trainyard/runbooks"
)

// ConditionFacts are the variables runbook conditions and policies see, as
// runbooks.ConditionVariables documents them. The assessment builds them once; the workflow
// keeps them and passes them back for each policy check.
type ConditionFacts struct {
	Release ReleaseVar `json:"release"`
	Runbook RunbookVar `json:"runbook"`
	Risk    RiskVar    `json:"risk"`
	Impact  ImpactVar  `json:"impact"`
	Change  ChangeVar  `json:"change"`
}

// ReleaseVar is the release variable.
type ReleaseVar struct {
	Version     string          `json:"version"`
	Requester   string          `json:"requester"`
	Components  []ComponentFact `json:"components"`
	Environment string          `json:"environment"`
}

// ComponentFact is one shipped component.
type ComponentFact struct {
	Name     string `json:"name"`
	Version  string `json:"version"`
	Artifact string `json:"artifact"`
}

// RunbookVar is the runbook variable.
type RunbookVar struct {
	Name               string   `json:"name"`
	Tier               int      `json:"tier"`
	DataClassification string   `json:"dataClassification"`
	Owners             []string `json:"owners"`
	Capabilities       []string `json:"capabilities"`
}

// RiskVar is the risk variable.
type RiskVar struct {
	Score   int                `json:"score"`
	Level   string             `json:"level"`
	Factors map[string]float64 `json:"factors"`
}

// ImpactVar is the impact variable.
type ImpactVar struct {
	Score        int      `json:"score"`
	Dependents   []string `json:"dependents"`
	Capabilities []string `json:"capabilities"`
}

// ChangeVar is the change variable.
type ChangeVar struct {
	Commit       string   `json:"commit"`
	Authors      []string `json:"authors"`
	Churn        int      `json:"churn"`
	Coverage     float64  `json:"coverage"`
	SchemaChange bool     `json:"schemaChange"`
	Major        bool     `json:"major"`
	Components   int      `json:"components"`
}

// StageVar is the stage variable.
type StageVar struct {
	Name        string `json:"name"`
	Environment string `json:"environment"`
	Region      string `json:"region"`
}

// GovernanceVar is the governance variable policies see.
type GovernanceVar struct {
	ApprovalsRequired int      `json:"approvalsRequired"`
	ApprovalRoles     []string `json:"approvalRoles"`
	ScanReports       int      `json:"scanReports"`
	ReadinessGates    []string `json:"readinessGates"`
	ChangeRequest     bool     `json:"changeRequest"`
}

// vars is the variable map a condition evaluates against.
func (f ConditionFacts) vars(stage *StageVar, gov *GovernanceVar) map[string]any {
	v := map[string]any{
		"release": f.Release, "runbook": f.Runbook, "risk": f.Risk, "impact": f.Impact, "change": f.Change,
	}
	if stage != nil {
		v["stage"] = *stage
	} else {
		v["stage"] = StageVar{}
	}
	if gov != nil {
		v["governance"] = *gov
	}
	return v
}

func runbookVar(rb runbooks.Runbook) RunbookVar {
	return RunbookVar{
		Name: rb.Name, Tier: rb.Tier, DataClassification: rb.DataClassification,
		Owners: nonNil(rb.Owners), Capabilities: nonNil(rb.Capabilities),
	}
}

func riskVar(a risk.Assessment) RiskVar {
	return RiskVar{Score: a.Score, Level: a.Level, Factors: a.FactorPoints()}
}

func impactVar(im *risk.Impact) ImpactVar {
	if im == nil {
		return ImpactVar{Dependents: []string{}, Capabilities: []string{}}
	}
	return ImpactVar{Score: im.Score, Dependents: nonNil(im.Dependents), Capabilities: nonNil(im.Capabilities)}
}

// majorBump reports whether version raises the major version of previous ("v2.0.0" after
// "1.9.3"). Versions that are not dotted numbers never count as major.
func majorBump(version, previous string) bool {
	major := func(v string) (string, bool) {
		v = strings.TrimPrefix(v, "v")
		m, _, _ := strings.Cut(v, ".")
		if m == "" || strings.Trim(m, "0123456789") != "" {
			return "", false
		}
		return strings.TrimLeft(m, "0"), true
	}
	a, ok1 := major(version)
	b, ok2 := major(previous)
	if !ok1 || !ok2 {
		return false
	}
	if len(a) != len(b) {
		return len(a) > len(b)
	}
	return a > b
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
