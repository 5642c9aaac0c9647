package risk

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/trainyard/trainyard/runbooks"
)

// A Tuesday morning in May: no timing risk.
var weekday = time.Date(2026, 5, 12, 10, 0, 0, 0, time.UTC)

func TestScore_TableOfHistories(t *testing.T) {
	t.Parallel()
	calm := Facts{Churn: 0, Coverage: 100, Components: 1, At: weekday}
	tests := []struct {
		name      string
		facts     Facts
		model     *runbooks.RiskModel
		wantScore int
		wantLevel string
		wantWhy   map[string]string
	}{
		{
			name:  "a clean history, full coverage, one component: only churn-free calm",
			facts: with(calm, func(f *Facts) { f.History = Outcomes{Total: 20} }),
			// Every factor 0.
			wantScore: 0, wantLevel: Low,
			wantWhy: map[string]string{"changeFailureRate": "0 of the last 20 releases failed or rolled back"},
		},
		{
			name:  "half the releases failed, weighed alone",
			facts: with(calm, func(f *Facts) { f.History = Outcomes{Total: 10, Failed: 5} }),
			model: &runbooks.RiskModel{Weights: map[string]float64{
				"changeFailureRate": 1, "churn": 0, "coverage": 0, "schemaChange": 0, "components": 0, "timing": 0,
			}},
			wantScore: 50, wantLevel: Medium,
		},
		{
			name:      "no history counts as a quarter failing",
			facts:     calm,
			wantScore: 4, // 25% of one sixth of 100
			wantLevel: Low,
			wantWhy:   map[string]string{"changeFailureRate": "no finished releases to learn from: counted as 25%"},
		},
		{
			name: "everything at once on a Saturday",
			facts: Facts{
				History: Outcomes{Total: 4, Failed: 4}, Churn: 100000, Coverage: 0.0,
				SchemaChanges: []string{"orders-api"}, Components: 6, Dependents: 5,
				At: time.Date(2026, 5, 16, 10, 0, 0, 0, time.UTC),
			},
			// failure 1, churn 1, coverage .5, schema 1, components 1, timing 1: 5.5 / 6.
			wantScore: 92, wantLevel: High,
			wantWhy: map[string]string{"timing": "on a weekend (Saturday)", "schemaChange": "schema or storage change in orders-api"},
		},
		{
			name: "schema change weighing triple crosses the runbook's high threshold",
			facts: with(calm, func(f *Facts) {
				f.History = Outcomes{Total: 10}
				f.SchemaChanges = []string{"db"}
			}),
			model:     &runbooks.RiskModel{Weights: map[string]float64{"schemaChange": 3}, Medium: 20, High: 35},
			wantScore: 38, // 3 of 8 weights at full value
			wantLevel: High,
		},
		{
			name:      "the last week of a quarter",
			facts:     with(calm, func(f *Facts) { f.History = Outcomes{Total: 1}; f.At = time.Date(2026, 9, 28, 11, 0, 0, 0, time.UTC) }),
			wantScore: 13, wantLevel: Low,
			wantWhy: map[string]string{"timing": "in the last week of a quarter"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := Score(tt.model, tt.facts)
			require.Equal(t, tt.wantScore, a.Score)
			require.Equal(t, tt.wantLevel, a.Level)
			require.Len(t, a.Factors, len(runbooks.RiskFactors), "every factor the language names is explained")
			var sum float64
			for i, f := range a.Factors {
				require.Equal(t, runbooks.RiskFactors[i], f.Name)
				require.NotEmpty(t, f.Why)
				sum += f.Points
			}
			require.InDelta(t, float64(a.Score), sum, 0.6, "the breakdown adds up to the score")
			for name, why := range tt.wantWhy {
				require.Equal(t, why, factor(t, a, name).Why)
			}
		})
	}
}

func TestScore_ChurnGrowsLogarithmically(t *testing.T) {
	t.Parallel()
	prev := -1.0
	for _, lines := range []int{1, 10, 100, 1000, 5000} {
		v := churn(lines).Value
		require.Greater(t, v, prev, "%d lines", lines)
		require.LessOrEqual(t, v, 1.0)
		prev = v
	}
	require.Equal(t, 1.0, churn(5000).Value)
	require.Equal(t, 1.0, churn(50000).Value, "capped at the ceiling")
}

func TestLevel_UsesDefaultsWithoutAModel(t *testing.T) {
	t.Parallel()
	require.Equal(t, Low, Level(nil, DefaultMedium-1))
	require.Equal(t, Medium, Level(nil, DefaultMedium))
	require.Equal(t, High, Level(nil, DefaultHigh))
	require.Equal(t, Medium, Level(&runbooks.RiskModel{High: 90}, 80))
}

func TestFactorPoints_KeyedByFactor(t *testing.T) {
	t.Parallel()
	a := Score(nil, Facts{SchemaChanges: []string{"x"}, Coverage: 100, Components: 1, History: Outcomes{Total: 3}, At: weekday})
	pts := a.FactorPoints()
	require.Len(t, pts, 6)
	require.InDelta(t, 16.7, pts["schemaChange"], 0.01)
	require.Zero(t, pts["timing"])
}

func with(f Facts, change func(*Facts)) Facts {
	change(&f)
	return f
}

func factor(t *testing.T, a Assessment, name string) Factor {
	t.Helper()
	for _, f := range a.Factors {
		if f.Name == name {
			return f
		}
	}
	t.Fatalf("no factor %s", name)
	return Factor{}
}
