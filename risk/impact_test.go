package risk

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/trainyard/trainyard/runbooks"
)

func TestScoreImpact_FromTheCatalogsDependencyMapping(t *testing.T) {
	t.Parallel()
	ledger := runbooks.Runbook{Name: "ledger", Tier: 1, DataClassification: "pci", Capabilities: []string{"payments"},
		Scope: &runbooks.Scope{Components: []runbooks.Component{{Name: "ledger-api"}}}}
	orders := runbooks.Runbook{Name: "orders", Capabilities: []string{"checkout", "order-history"},
		Scope: &runbooks.Scope{Components: []runbooks.Component{
			{Name: "orders-api", DependsOn: []string{"ledger-api"}},
			{Name: "orders-worker", DependsOn: []string{"ledger-api", "queue"}},
			{Name: "orders-ui", DependsOn: []string{"orders-api"}},
		}}}
	billing := runbooks.Runbook{Name: "billing", Capabilities: []string{"payments", "invoicing"},
		Scope: &runbooks.Scope{Components: []runbooks.Component{{Name: "invoicer", DependsOn: []string{"ledger-api"}}}}}
	lonely := runbooks.Runbook{Name: "lonely", Tier: 4, DataClassification: "public"}
	catalog := []runbooks.Runbook{ledger, orders, billing, lonely}

	im := ScoreImpact(catalog, ledger, []string{"ledger-api"})
	require.Equal(t, []string{"billing/invoicer", "orders/orders-api", "orders/orders-worker"}, im.Dependents)
	require.Equal(t, []string{"checkout", "invoicing", "order-history", "payments"}, im.Capabilities)
	// dependents 3/10, capabilities 4/5, tier 1 full, pci full: (0.3 + 0.8 + 1 + 1) / 4.
	require.Equal(t, 78, im.Score)
	require.Len(t, im.Factors, 4)

	im = ScoreImpact(catalog, lonely, nil)
	require.Zero(t, im.Score)
	require.Empty(t, im.Dependents)
}
