package hardware

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	return path
}

var wantLab = []Device{
	{ID: "cam-01", Address: "10.1.0.11:8080", Labels: map[string]string{"rack": "a"}},
	{ID: "cam-02", Address: "10.1.0.12:8080"},
}

func TestLoadInventory_ReadsJSONAndYAMLFiles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, file, content string
	}{
		{name: "json", file: "lab.json", content: `[
  {"id": "cam-01", "address": "10.1.0.11:8080", "labels": {"rack": "a"}},
  {"id": "cam-02", "address": "10.1.0.12:8080"}
]`},
		{name: "yaml", file: "lab.yaml", content: `
- id: cam-01
  address: 10.1.0.11:8080
  labels: {rack: a}
- id: cam-02
  address: "10.1.0.12:8080"
`},
		{name: "json without extension", file: "lab", content: `[{"id":"cam-01","address":"10.1.0.11:8080","labels":{"rack":"a"}},{"id":"cam-02","address":"10.1.0.12:8080"}]`},
		{name: "yaml without extension", file: "lab", content: "- {id: cam-01, address: '10.1.0.11:8080', labels: {rack: a}}\n- {id: cam-02, address: '10.1.0.12:8080'}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := LoadInventory(context.Background(), writeFile(t, tt.file, tt.content), nil)
			require.NoError(t, err)
			require.Equal(t, wantLab, got)
		})
	}
}

func TestLoadInventory_ErrorsNameTheSourceAndLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, file, content string
		want                []string
	}{
		{name: "json syntax", file: "lab.json", content: "[\n  {\"id\": \"cam-01\", \"address\": \"a\"},\n  {\"id\": \"cam-02\" \"address\": \"b\"}\n]", want: []string{"lab.json", "line 3"}},
		{name: "json missing address", file: "lab.json", content: "[\n  {\"id\": \"cam-01\", \"address\": \"a\"},\n  {\"id\": \"cam-02\"}\n]", want: []string{"line 3", `device "cam-02" has no address`}},
		{name: "json unknown field", file: "lab.json", content: "[\n  {\"id\": \"cam-01\",\n   \"adress\": \"a\"}\n]", want: []string{"line 2", `unknown field "adress"`}},
		{name: "json labels not strings", file: "lab.json", content: "[\n  {\"id\": \"cam-01\", \"address\": \"a\",\n   \"labels\": {\"rack\": 3}}\n]", want: []string{"line 3", "labels"}},
		{name: "json object", file: "lab.json", content: `{"devices": []}`, want: []string{"line 1", "want a JSON list"}},
		{name: "json truncated", file: "lab.json", content: `[{"id": "cam-01", "address": "a"}`, want: []string{"ends before"}},
		{name: "yaml missing id", file: "lab.yml", content: "- id: cam-01\n  address: a\n- address: b\n", want: []string{"lab.yml", "line 3", "no id"}},
		{name: "yaml duplicate", file: "lab.yaml", content: "- id: cam-01\n  address: a\n- id: cam-01\n  address: b\n", want: []string{"line 3", `"cam-01" is listed twice (first on line 1)`}},
		{name: "yaml unknown field", file: "lab.yaml", content: "- id: cam-01\n  address: a\n  rack: b\n", want: []string{"line 3", `unknown field "rack"`}},
		{name: "yaml syntax", file: "lab.yaml", content: "- id: cam-01\n  address: [a\n", want: []string{"lab.yaml", "line"}},
		{name: "yaml mapping", file: "lab.yaml", content: "devices:\n  - id: a\n", want: []string{"line 1", "want a list"}},
		{name: "empty", file: "lab.yaml", content: "", want: []string{"lists no devices"}},
		{name: "empty list", file: "lab.json", content: "[]", want: []string{"lists no devices"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := LoadInventory(context.Background(), writeFile(t, tt.file, tt.content), nil)
			require.Error(t, err)
			for _, w := range tt.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestLoadInventory_MissingFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "nope.json")
	_, err := LoadInventory(context.Background(), path, nil)
	require.ErrorIs(t, err, os.ErrNotExist)
	require.Contains(t, err.Error(), "nope.json")
}

func TestLoadInventory_FetchesURLs(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/lab.json":
			_, _ = w.Write([]byte(`[{"id":"cam-02","address":"10.1.0.12:8080"},{"id":"cam-01","address":"10.1.0.11:8080","labels":{"rack":"a"}}]`))
		case "/lab":
			w.Header().Set("Content-Type", "application/yaml")
			_, _ = w.Write([]byte("- id: cam-01\n  address: 10.1.0.11:8080\n  labels: {rack: a}\n- id: cam-02\n  address: 10.1.0.12:8080\n"))
		case "/broken":
			_, _ = w.Write([]byte("[\n{\"id\": \"cam-01\"}\n]"))
		case "/huge":
			_, _ = w.Write([]byte("[" + strings.Repeat(" ", MaxInventoryBytes) + "]"))
		default:
			http.Error(w, "no such inventory", http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)

	got, err := LoadInventory(context.Background(), srv.URL+"/lab.json", srv.Client())
	require.NoError(t, err)
	require.Equal(t, []Device{wantLab[1], wantLab[0]}, got, "the inventory's order is kept; PlanWaves sorts")

	got, err = LoadInventory(context.Background(), srv.URL+"/lab", nil)
	require.NoError(t, err)
	require.Equal(t, wantLab, got)

	_, err = LoadInventory(context.Background(), srv.URL+"/broken", nil)
	require.ErrorContains(t, err, srv.URL+"/broken: line 2")

	_, err = LoadInventory(context.Background(), srv.URL+"/huge", nil)
	require.ErrorContains(t, err, "larger than")

	_, err = LoadInventory(context.Background(), srv.URL+"/gone?token=s3cret", nil)
	require.ErrorContains(t, err, "404 Not Found")
	require.Contains(t, err.Error(), srv.URL+"/gone")
	require.NotContains(t, err.Error(), "s3cret", "a query may carry a token")
}

func TestLoadInventory_UnreachableURLKeepsTheQueryOutOfTheError(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()

	_, err := LoadInventory(context.Background(), url+"/lab.json?token=s3cret", nil)
	require.Error(t, err)
	require.Contains(t, err.Error(), url+"/lab.json")
	require.NotContains(t, err.Error(), "s3cret")
}
