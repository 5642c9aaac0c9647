package hardware

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/trainyard/trainyard/runbooks"
)

// fleet is n devices named dev-01…, listed in reverse so that sorting shows.
func fleet(n int) []Device {
	out := make([]Device, 0, n)
	for i := n; i >= 1; i-- {
		out = append(out, Device{ID: fmt.Sprintf("dev-%02d", i), Address: fmt.Sprintf("127.0.0.1:%d", 9000+i)})
	}
	return out
}

func sizes(plan [][]Device) []int {
	out := make([]int, 0, len(plan))
	for _, w := range plan {
		out = append(out, len(w))
	}
	return out
}

func TestPlanWaves_Sizes(t *testing.T) {
	t.Parallel()
	one, rest := runbooks.Wave{Count: 1}, runbooks.Wave{Rest: true}
	pct := func(p int) runbooks.Wave { return runbooks.Wave{Percent: p} }
	tests := []struct {
		name    string
		devices int
		waves   []runbooks.Wave
		want    []int
	}{
		{name: "canary, quarter, rest", devices: 10, waves: []runbooks.Wave{one, pct(25), rest}, want: []int{1, 3, 6}},
		{name: "percent rounds up", devices: 7, waves: []runbooks.Wave{pct(30), rest}, want: []int{3, 4}},
		{name: "percent takes at least one", devices: 3, waves: []runbooks.Wave{pct(1), pct(1), rest}, want: []int{1, 1, 1}},
		{name: "percent is of the whole fleet", devices: 4, waves: []runbooks.Wave{pct(50), pct(50)}, want: []int{2, 2}},
		{name: "empty rest is dropped", devices: 3, waves: []runbooks.Wave{one, pct(50), rest}, want: []int{1, 2}},
		{name: "waves cut to the devices left", devices: 3, waves: []runbooks.Wave{{Count: 2}, {Count: 5}}, want: []int{2, 1}},
		{name: "one device", devices: 1, waves: []runbooks.Wave{one, pct(25), rest}, want: []int{1}},
		{name: "everything at once", devices: 5, waves: []runbooks.Wave{rest}, want: []int{5}},
		{name: "hundred percent", devices: 5, waves: []runbooks.Wave{pct(100)}, want: []int{5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			plan, err := PlanWaves(fleet(tt.devices), tt.waves)
			require.NoError(t, err)
			require.Equal(t, tt.want, sizes(plan))
		})
	}
}

func TestPlanWaves_StableOrderByID(t *testing.T) {
	t.Parallel()
	devices := fleet(4)

	plan, err := PlanWaves(devices, []runbooks.Wave{{Count: 1}, {Rest: true}})
	require.NoError(t, err)

	require.Equal(t, "dev-01", plan[0][0].ID)
	require.Equal(t, []string{"dev-02", "dev-03", "dev-04"}, []string{plan[1][0].ID, plan[1][1].ID, plan[1][2].ID})
	require.Equal(t, "dev-04", devices[0].ID, "the caller's slice is not reordered")
	again, err := PlanWaves(fleet(4), []runbooks.Wave{{Count: 1}, {Rest: true}})
	require.NoError(t, err)
	require.Equal(t, plan, again)
}

func TestPlanWaves_Refuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		devices []Device
		waves   []runbooks.Wave
		want    string
	}{
		{name: "empty fleet", devices: nil, waves: []runbooks.Wave{{Rest: true}}, want: "lists no devices"},
		{name: "no waves", devices: fleet(2), waves: nil, want: "no waves"},
		{name: "devices left without rest", devices: fleet(5), waves: []runbooks.Wave{{Count: 1}, {Percent: 20}}, want: "take 2 of 5 devices, leaving dev-03, dev-04, dev-05: end the waves with rest"},
		{name: "rest before the end", devices: fleet(5), waves: []runbooks.Wave{{Rest: true}, {Count: 1}}, want: "must be the last"},
		{name: "two kinds in a wave", devices: fleet(5), waves: []runbooks.Wave{{Count: 1, Percent: 10}, {Rest: true}}, want: "wave 1 must set one of"},
		{name: "empty wave", devices: fleet(5), waves: []runbooks.Wave{{}, {Rest: true}}, want: "wave 1 must set one of"},
		{name: "over a hundred percent", devices: fleet(5), waves: []runbooks.Wave{{Percent: 150}}, want: "more than the whole fleet"},
		{name: "duplicate ids", devices: append(fleet(2), Device{ID: "dev-01", Address: "x"}), waves: []runbooks.Wave{{Rest: true}}, want: `"dev-01" is listed twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := PlanWaves(tt.devices, tt.waves)
			require.ErrorContains(t, err, tt.want)
		})
	}
}
