package worker

import (
	"reflect"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/trainyard/trainyard/activities"
)

// Every activity method is served by a worker under its own name: a method added to
// Activities and forgotten here would leave releases retrying an activity nobody runs.
func TestWorkers_ServeEveryActivityUnderItsName(t *testing.T) {
	t.Parallel()
	acts := &activities.Activities{}
	served := map[string]bool{}
	for _, set := range []map[string]any{MainActivities(acts), SiteActivities(acts)} {
		for name := range set {
			require.False(t, served[name], "%s is on two task queues", name)
			served[name] = true
		}
	}
	var missing []string
	typ := reflect.TypeOf(acts)
	for i := range typ.NumMethod() {
		m := typ.Method(i)
		// Activities take a context and return an error last; helpers do not.
		if m.Type.NumIn() < 2 || m.Type.In(1).String() != "context.Context" {
			continue
		}
		if out := m.Type.NumOut(); out == 0 || m.Type.Out(out-1).String() != "error" {
			continue
		}
		if !served[m.Name] {
			missing = append(missing, m.Name)
		}
	}
	sort.Strings(missing)
	require.Empty(t, missing, "activities no worker serves")
}
