package server

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/trainyard/trainyard/runbooks"
)

func TestCheckResidency_RefusesSitesOutsideTheStagesZone(t *testing.T) {
	t.Parallel()
	rb := runbooks.Runbook{Name: "billing", Stages: []runbooks.Stage{
		{Name: "eu", Residency: "eu", Targets: []runbooks.Target{{Name: "a", Site: "dc-fra"}, {Name: "b", Site: "dc-nyc"}, {Name: "c", Site: "lab"}, {Name: "cloud", Kind: "argocd"}}},
		{Name: "anywhere", Targets: []runbooks.Target{{Name: "d", Site: "dc-nyc"}}},
	}}
	zones := map[string]string{"dc-fra": "eu", "dc-nyc": "us"}
	p := checkResidency(rb, zones)
	require.NotNil(t, p)
	require.Equal(t, http.StatusUnprocessableEntity, p.Status)
	require.Len(t, p.Problems, 2)
	require.Equal(t, "stages[0].targets[1].site", p.Problems[0].Path)
	require.Contains(t, p.Problems[0].Msg, "site dc-nyc is in us")
	require.Contains(t, p.Problems[1].Msg, "site lab has no zone")

	rb.Stages[0].Targets = rb.Stages[0].Targets[:1]
	require.Nil(t, checkResidency(rb, zones))
}

func TestCheckLabels_KeysAndSizes(t *testing.T) {
	t.Parallel()
	require.Nil(t, checkLabels(map[string]string{"sox": "true", "compliance/pci-scope": "cardholder"}))
	require.Contains(t, checkLabels(map[string]string{"bad key": "x"}).Detail, "not usable")
	require.Contains(t, checkLabels(map[string]string{"k": strings.Repeat("x", 300)}).Detail, "keep values under")
}
