package deploy

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/trainyard/trainyard/config"
)

const (
	repoRoot       = ".."
	composePath    = "../docker-compose.yml"
	dockerfilePath = "../Dockerfile"
	// composeConfigPath is the trainyard config file the compose services mount.
	composeConfigPath = "compose/config.yaml"
)

// trainyardServices run the image built from the Dockerfile.
var trainyardServices = []string{"trainyard-migrate", "trainyard-server", "trainyard-worker", "trainyard-site-local"}

// longRunningTrainyardServices are the trainyard services that need Temporal.
var longRunningTrainyardServices = []string{"trainyard-server", "trainyard-worker", "trainyard-site-local"}

// testVars stand in for the .env file when the compose file is interpolated.
var testVars = map[string]string{
	"POSTGRES_PASSWORD":        "pg-secret-for-tests",
	"TRAINYARD_CI_TOKEN":       "ci-token-for-tests",
	"TRAINYARD_APPROVER_TOKEN": "approver-token-for-tests",
}

// --- the compose file ----------------------------------------------------------------------

func TestCompose_DefinesEveryService(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)

	for _, name := range []string{
		"postgres", "temporal", "temporal-ui",
		"trainyard-migrate", "trainyard-server", "trainyard-worker", "trainyard-site-local",
	} {
		require.Contains(t, c.Services, name, "docker-compose.yml has no service %q", name)
	}
}

func TestCompose_TrainyardServicesReachThePostgresAndTemporalServices(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)
	pg := c.service(t, "postgres")
	temporal := c.service(t, "temporal")

	for _, name := range trainyardServices {
		t.Run(name, func(t *testing.T) {
			env := c.service(t, name).Environment

			dbURL, err := url.Parse(interpolate(t, env.get(t, "DATABASE_URL")))
			require.NoError(t, err, "DATABASE_URL is not a URL")
			require.Equal(t, "postgres", dbURL.Scheme)
			require.Equal(t, "postgres", dbURL.Hostname(), "DATABASE_URL must name the postgres service")
			require.Equal(t, "5432", dbURL.Port())
			require.Equal(t, "/"+interpolate(t, pg.Environment.get(t, "POSTGRES_DB")), dbURL.Path,
				"DATABASE_URL must name the database the postgres service creates")
			require.Equal(t, interpolate(t, pg.Environment.get(t, "POSTGRES_USER")), dbURL.User.Username())
			password, _ := dbURL.User.Password()
			require.Equal(t, interpolate(t, pg.Environment.get(t, "POSTGRES_PASSWORD")), password)

			require.Equal(t, "temporal:7233", env.get(t, "TEMPORAL_ADDRESS"), "TEMPORAL_ADDRESS must name the temporal service")
			require.Equal(t, temporal.Environment.get(t, "DEFAULT_NAMESPACE"), env.get(t, "TEMPORAL_NAMESPACE"),
				"trainyard must use the namespace that temporal auto-setup registers")
		})
	}
}

func TestCompose_ServerListensOnAllInterfacesAndPublishes8080(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)
	server := c.service(t, "trainyard-server")

	require.Contains(t, server.Ports, portMapping{Published: "8080", Target: "8080"})
	host, port, err := net.SplitHostPort(server.Environment.get(t, "TRAINYARD_HTTP_ADDR"))
	require.NoError(t, err)
	require.Equal(t, "0.0.0.0", host, "a server bound to loopback is unreachable from outside its container")
	require.Equal(t, "8080", port)

	public, err := url.Parse(interpolate(t, server.Environment.get(t, "TRAINYARD_PUBLIC_URL")))
	require.NoError(t, err)
	require.Equal(t, "8080", public.Port(), "TRAINYARD_PUBLIC_URL must use the published port")
}

func TestCompose_TemporalStoresItsDataInThePostgresService(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)
	pg := c.service(t, "postgres")
	temporal := c.service(t, "temporal")

	require.True(t, strings.HasPrefix(temporal.Image, "temporalio/auto-setup:"), "temporal image is %q", temporal.Image)
	env := temporal.Environment
	require.Equal(t, "postgres12", env.get(t, "DB"))
	require.Equal(t, "postgres", env.get(t, "POSTGRES_SEEDS"), "POSTGRES_SEEDS must name the postgres service")
	require.Equal(t, "5432", env.get(t, "DB_PORT"))
	require.Equal(t, interpolate(t, pg.Environment.get(t, "POSTGRES_USER")), interpolate(t, env.get(t, "POSTGRES_USER")))
	require.Equal(t, interpolate(t, pg.Environment.get(t, "POSTGRES_PASSWORD")), interpolate(t, env.get(t, "POSTGRES_PWD")))
	require.Equal(t, "service_healthy", temporal.DependsOn["postgres"])
	require.Contains(t, temporal.Ports, portMapping{HostIP: "127.0.0.1", Published: "7233", Target: "7233"})
}

func TestCompose_TemporalUIPointsAtTheTemporalService(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)
	ui := c.service(t, "temporal-ui")

	require.True(t, strings.HasPrefix(ui.Image, "temporalio/ui:"), "temporal-ui image is %q", ui.Image)
	require.Equal(t, "temporal:7233", ui.Environment.get(t, "TEMPORAL_ADDRESS"))
	require.NotEmpty(t, ui.Environment.get(t, "TEMPORAL_CORS_ORIGINS"))
	require.Contains(t, ui.Ports, portMapping{HostIP: "127.0.0.1", Published: "8233", Target: "8080"})

	// The links trainyard hands out must lead to the published UI.
	for _, name := range longRunningTrainyardServices {
		uiURL, err := url.Parse(interpolate(t, c.service(t, name).Environment.get(t, "TRAINYARD_TEMPORAL_UI_URL")))
		require.NoError(t, err)
		require.Equal(t, "8233", uiURL.Port(), "%s: TRAINYARD_TEMPORAL_UI_URL", name)
	}
}

func TestCompose_TrainyardServicesRunTheImageBuiltFromTheDockerfile(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)

	image := c.service(t, "trainyard-server").Image
	require.NotEmpty(t, image, "name the built image so every trainyard service shares it")
	for _, name := range trainyardServices {
		s := c.service(t, name)
		require.NotNil(t, s.Build, "%s has no build section", name)
		require.Equal(t, ".", s.Build.Context, "%s must build from the repository root", name)
		require.Contains(t, []string{"", "Dockerfile"}, s.Build.Dockerfile, "%s must build the Dockerfile", name)
		require.Equal(t, image, s.Image, "%s must run the same image as trainyard-server", name)
	}
}

func TestCompose_RunsEachTrainyardRoleWithItsSubcommand(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)

	for name, want := range map[string][]string{
		"trainyard-migrate":    {"migrate"},
		"trainyard-server":     {"server"},
		"trainyard-worker":     {"worker"},
		"trainyard-site-local": {"worker", "--site", "local"},
	} {
		require.Equal(t, want, []string(c.service(t, name).Command), "%s command", name)
	}
	require.Equal(t, "no", c.service(t, "trainyard-migrate").Restart, "migrate runs once")
}

func TestCompose_StartsEachServiceOnceWhatItNeedsIsReady(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)

	require.NotNil(t, c.service(t, "postgres").Healthcheck, "postgres needs a healthcheck for service_healthy")
	require.NotNil(t, c.service(t, "temporal").Healthcheck, "temporal needs a healthcheck for service_healthy")
	require.Equal(t, "service_healthy", c.service(t, "trainyard-migrate").DependsOn["postgres"])
	for _, name := range longRunningTrainyardServices {
		deps := c.service(t, name).DependsOn
		require.Equal(t, "service_completed_successfully", deps["trainyard-migrate"], "%s must wait for the migrations", name)
		require.Equal(t, "service_healthy", deps["temporal"], "%s must wait for Temporal", name)
	}
}

func TestCompose_TakesEverySecretFromVariables(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)
	secretName := regexp.MustCompile(`TOKEN|SECRET|PASSWORD|PWD`)
	// ${NAME}, ${NAME:?message} or ${NAME:-} (optional, empty by default): never a literal.
	reference := regexp.MustCompile(`^\$\{[A-Z0-9_]+(:?\?[^}]*|:?-)?\}$`)

	for svcName, s := range c.Services {
		for key, value := range s.Environment {
			if secretName.MatchString(key) {
				require.Regexp(t, reference, value, "%s: %s must come from a ${...} variable, without a literal default", svcName, key)
			}
		}
		if raw, ok := s.Environment["DATABASE_URL"]; ok {
			u, err := url.Parse(interpolate(t, raw))
			require.NoError(t, err)
			password, _ := u.User.Password()
			require.Equal(t, testVars["POSTGRES_PASSWORD"], password, "%s: the DATABASE_URL password must be ${POSTGRES_PASSWORD}", svcName)
		}
	}

	raw, err := os.ReadFile(composePath)
	require.NoError(t, err)
	for _, devToken := range []string{config.DevToken, config.DevApproverToken} {
		require.NotContains(t, string(raw), devToken, "the compose file must not use the public dev tokens")
	}
}

func TestCompose_GivesEveryTrainyardServiceTheConfigAndItsPrincipalsTokens(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)
	var file struct {
		Principals []config.Principal `yaml:"principals"`
	}
	data, err := os.ReadFile(composeConfigPath)
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(data, &file))
	require.NotEmpty(t, file.Principals)

	for _, name := range trainyardServices {
		s := c.service(t, name)
		configPath := s.Environment.get(t, "TRAINYARD_CONFIG")
		require.Contains(t, s.Volumes, "./deploy/compose/config.yaml:"+configPath+":ro",
			"%s must mount deploy/compose/config.yaml read-only at TRAINYARD_CONFIG", name)
		for _, p := range file.Principals {
			require.Empty(t, p.Token, "principal %s: the compose config must not hold a token", p.Name)
			require.NotEmpty(t, p.TokenEnv, "principal %s: name the token's variable with tokenEnv", p.Name)
			require.Regexp(t, `^\$\{`+p.TokenEnv+`:\?`, s.Environment.get(t, p.TokenEnv),
				"%s: %s must be a required variable, so compose stops early when .env lacks it", name, p.TokenEnv)
		}
	}
}

func TestCompose_SiteWorkerServesSiteLocalWithAPersistentWorkdir(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)
	site := c.service(t, "trainyard-site-local")

	cmd := []string(site.Command)
	i := slices.Index(cmd, "--site")
	require.GreaterOrEqual(t, i, 0, "the site worker needs --site")
	require.Less(t, i+1, len(cmd))
	require.Equal(t, "local", cmd[i+1])
	require.Equal(t, "worker", cmd[0])

	found := false
	for _, v := range site.Volumes {
		if strings.HasSuffix(v, ":/var/lib/trainyard/sites") {
			name, _, _ := strings.Cut(v, ":")
			require.Contains(t, c.Volumes, name, "the site workdir must be a declared named volume")
			found = true
		}
	}
	require.True(t, found, "the site worker's workdir must survive restarts")
}

func TestComposeConfig_LoadsAndPassesProductionValidation(t *testing.T) {
	// Not parallel: sets environment variables.
	for k, v := range testVars {
		t.Setenv(k, v)
	}

	cfg, err := config.Load(composeConfigPath)
	require.NoError(t, err)
	require.NoError(t, cfg.Validate(false))

	roles := map[string][]string{}
	for _, p := range cfg.Principals {
		roles[p.Name] = p.Roles
	}
	require.Equal(t, map[string][]string{
		"ci":       {"deployer"},
		"approver": {"release-manager", "approver"},
	}, roles)
}

func TestComposeEnvExample_ListsEveryRequiredVariableWithPlaceholders(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("compose/.env.example")
	require.NoError(t, err)
	raw, err := os.ReadFile(composePath)
	require.NoError(t, err)

	example := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		require.True(t, ok, ".env.example line %q is not NAME=value", line)
		example[k] = v
	}
	required := regexp.MustCompile(`\$\{([A-Z0-9_]+):?\?`).FindAllStringSubmatch(string(raw), -1)
	require.NotEmpty(t, required)
	for _, m := range required {
		require.Contains(t, example, m[1], ".env.example must show %s, which the compose file requires", m[1])
		require.Contains(t, example[m[1]], "replace-with", "%s in .env.example must be a placeholder, not a secret", m[1])
	}
}

func TestComposeConfigIsValid(t *testing.T) {
	t.Parallel()
	dockerCompose := requireDockerCompose(t)

	out, err := runDockerCompose(t, dockerCompose, testVars, "config", "-q")
	require.NoError(t, err, "docker-compose config -q:\n%s", out)
}

func TestComposeConfig_RefusesToStartWithoutTheSecrets(t *testing.T) {
	t.Parallel()
	dockerCompose := requireDockerCompose(t)

	for missing := range testVars {
		t.Run(missing, func(t *testing.T) {
			t.Parallel()
			vars := map[string]string{}
			for k, v := range testVars {
				if k != missing {
					vars[k] = v
				}
			}
			out, err := runDockerCompose(t, dockerCompose, vars, "config", "-q")
			require.Error(t, err, "docker-compose accepted the file without %s", missing)
			require.Contains(t, out, missing)
		})
	}
}

// --- the Dockerfile ------------------------------------------------------------------------

func TestDockerfile_BuildsTheTrainyardCommandStatically(t *testing.T) {
	t.Parallel()
	stages := loadDockerfile(t)
	require.GreaterOrEqual(t, len(stages), 2, "the Dockerfile must be multi-stage")

	build := stages[0]
	run := build.find("RUN", "go build")
	require.NotEmpty(t, run, "the build stage has no go build")
	require.Contains(t, run, "./cmd/trainyard")
	require.Contains(t, run, "CGO_ENABLED=0", "the binary must be static")
	require.Contains(t, run, "-trimpath")
	out := regexp.MustCompile(`-o\s+(\S+)`).FindStringSubmatch(run)
	require.NotNil(t, out, "go build needs -o")

	// Modules are downloaded in a layer of their own, before the source is copied.
	download := slices.IndexFunc(build.instructions, func(in instruction) bool {
		return in.keyword == "RUN" && strings.Contains(in.args, "go mod download")
	})
	copySource := slices.IndexFunc(build.instructions, func(in instruction) bool {
		return in.keyword == "COPY" && in.args == ". ."
	})
	require.GreaterOrEqual(t, download, 0, "no go mod download layer")
	require.Less(t, download, copySource, "go mod download must come before COPY . .")

	runtime := stages[len(stages)-1]
	require.Contains(t, runtime.all("COPY"), fmt.Sprintf("--from=%s %s /usr/local/bin/trainyard", build.name, out[1]))
	require.Equal(t, `["/usr/local/bin/trainyard"]`, runtime.last("ENTRYPOINT"))
	require.Equal(t, `["server"]`, runtime.last("CMD"))
	require.Equal(t, "8080", runtime.last("EXPOSE"))
}

func TestDockerfile_RuntimeRunsAsNonRootWithAShell(t *testing.T) {
	t.Parallel()
	stages := loadDockerfile(t)
	runtime := stages[len(stages)-1]

	user := runtime.last("USER")
	require.NotEmpty(t, user, "the runtime stage must set USER")
	uid, _, _ := strings.Cut(user, ":")
	require.NotContains(t, []string{"root", "0"}, uid, "the runtime must not run as root")
	if _, err := strconv.Atoi(uid); err == nil {
		require.NotEmpty(t, runtime.find("RUN", "--uid "+uid), "USER %s must be a user the image creates", uid)
	}
	require.NotEmpty(t, runtime.find("RUN", "useradd"), "the image must create the trainyard user")
	require.Contains(t, runtime.find("RUN", "useradd"), "trainyard")

	// Site command targets run shell commands: no scratch or distroless runtime.
	require.NotContains(t, runtime.base, "scratch")
	require.NotContains(t, runtime.base, "distroless")
	require.Contains(t, runtime.find("RUN", "apt-get install"), "ca-certificates")
	require.Contains(t, runtime.find("RUN", "apt-get install"), "curl", "the compose health check of the server uses curl")
}

func TestDockerfile_ShipsTheRunbooksWhereTheConfigLooksForThem(t *testing.T) {
	t.Parallel()
	stages := loadDockerfile(t)
	runtime := stages[len(stages)-1]

	dir := runtime.env()["TRAINYARD_RUNBOOKS_DIR"]
	require.NotEmpty(t, dir, "the image must set TRAINYARD_RUNBOOKS_DIR")
	var source string
	for _, c := range runtime.all("COPY") {
		fields := strings.Fields(c)
		if len(fields) == 2 && strings.TrimSuffix(fields[1], "/") == dir {
			source = fields[0]
		}
	}
	require.NotEmpty(t, source, "nothing is copied to TRAINYARD_RUNBOOKS_DIR %s", dir)
	info, err := os.Stat(filepath.Join(repoRoot, source))
	require.NoError(t, err, "the runbooks the image copies must exist")
	require.True(t, info.IsDir())
}

func TestDockerignore_KeepsHistoryLocalStateAndSecretsOutOfTheBuild(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	require.NoError(t, err)
	lines := strings.Split(string(data), "\n")
	for _, want := range []string{".git", "bin/", ".trainyard/", ".env"} {
		require.Contains(t, lines, want)
	}
	for _, line := range lines {
		require.False(t, strings.HasPrefix(line, "runbooks") || strings.HasPrefix(line, "cmd"),
			".dockerignore must not exclude what the image builds from: %q", line)
	}
}

// --- helpers -------------------------------------------------------------------------------

type composeFile struct {
	Services map[string]service `yaml:"services"`
	Volumes  map[string]any     `yaml:"volumes"`
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	data, err := os.ReadFile(composePath)
	require.NoError(t, err)
	var c composeFile
	require.NoError(t, yaml.Unmarshal(data, &c), "parse docker-compose.yml")
	return c
}

func (c composeFile) service(t *testing.T, name string) service {
	t.Helper()
	s, ok := c.Services[name]
	require.True(t, ok, "docker-compose.yml has no service %q", name)
	return s
}

type service struct {
	Image       string        `yaml:"image"`
	Build       *buildSpec    `yaml:"build"`
	Command     stringList    `yaml:"command"`
	Environment environment   `yaml:"environment"`
	Ports       []portMapping `yaml:"ports"`
	DependsOn   dependsOn     `yaml:"depends_on"`
	Volumes     []string      `yaml:"volumes"`
	Healthcheck *struct {
		Test stringList `yaml:"test"`
	} `yaml:"healthcheck"`
	Restart string `yaml:"restart"`
}

// buildSpec is `build: path` or `build: {context, dockerfile}`.
type buildSpec struct {
	Context    string
	Dockerfile string
}

func (b *buildSpec) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		b.Context = n.Value
		return nil
	}
	var m struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	}
	if err := n.Decode(&m); err != nil {
		return err
	}
	b.Context, b.Dockerfile = m.Context, m.Dockerfile
	return nil
}

// stringList is a command in exec form, or in shell form split on spaces.
type stringList []string

func (s *stringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*s = strings.Fields(n.Value)
		return nil
	}
	var l []string
	err := n.Decode(&l)
	*s = l
	return err
}

// environment is the map or the NAME=value list form.
type environment map[string]string

func (e *environment) UnmarshalYAML(n *yaml.Node) error {
	*e = environment{}
	if n.Kind == yaml.SequenceNode {
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		for _, kv := range l {
			k, v, _ := strings.Cut(kv, "=")
			(*e)[k] = v
		}
		return nil
	}
	var m map[string]string
	if err := n.Decode(&m); err != nil {
		return err
	}
	for k, v := range m {
		(*e)[k] = v
	}
	return nil
}

func (e environment) get(t *testing.T, key string) string {
	t.Helper()
	v, ok := e[key]
	require.True(t, ok, "environment has no %s", key)
	return v
}

// portMapping is the short "[host_ip:]published:target" form or the long form.
type portMapping struct {
	HostIP    string
	Published string
	Target    string
}

func (p *portMapping) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		parts := strings.Split(strings.TrimSuffix(n.Value, "/tcp"), ":")
		switch len(parts) {
		case 1:
			p.Target = parts[0]
		case 2:
			p.Published, p.Target = parts[0], parts[1]
		case 3:
			p.HostIP, p.Published, p.Target = parts[0], parts[1], parts[2]
		default:
			return fmt.Errorf("port %q", n.Value)
		}
		return nil
	}
	var m struct {
		HostIP    string `yaml:"host_ip"`
		Published string `yaml:"published"`
		Target    string `yaml:"target"`
	}
	if err := n.Decode(&m); err != nil {
		return err
	}
	*p = portMapping{HostIP: m.HostIP, Published: m.Published, Target: m.Target}
	return nil
}

// dependsOn maps each dependency to its condition (service_started for the list form).
type dependsOn map[string]string

func (d *dependsOn) UnmarshalYAML(n *yaml.Node) error {
	*d = dependsOn{}
	if n.Kind == yaml.SequenceNode {
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		for _, name := range l {
			(*d)[name] = "service_started"
		}
		return nil
	}
	var m map[string]struct {
		Condition string `yaml:"condition"`
	}
	if err := n.Decode(&m); err != nil {
		return err
	}
	for name, dep := range m {
		(*d)[name] = dep.Condition
	}
	return nil
}

var variable = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}`)

// interpolate substitutes ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message} and
// ${NAME?message} as docker-compose does, with testVars as the environment.
func interpolate(t *testing.T, s string) string {
	t.Helper()
	return variable.ReplaceAllStringFunc(s, func(ref string) string {
		m := variable.FindStringSubmatch(ref)
		value, set := testVars[m[1]]
		empty := !set || (strings.HasPrefix(m[2], ":") && value == "")
		switch strings.TrimPrefix(m[2], ":") {
		case "-":
			if empty {
				return m[3]
			}
		case "?":
			require.False(t, empty, "%s is required: %s", m[1], m[3])
		}
		return value
	})
}

// requireDockerCompose finds docker-compose or fails: the compose checks are part of the suite.
func requireDockerCompose(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("docker-compose")
	require.NoError(t, err, "docker-compose is not installed; `make test` installs it "+
		"(apt-get install -y docker-compose), or install it yourself")
	return path
}

// runDockerCompose runs docker-compose on the repository's compose file with vars as the only
// values of the secrets: the caller's environment and any .env file are left out of it.
func runDockerCompose(t *testing.T, dockerCompose string, vars map[string]string, args ...string) (string, error) {
	t.Helper()
	emptyEnvFile := filepath.Join(t.TempDir(), "empty.env")
	require.NoError(t, os.WriteFile(emptyEnvFile, nil, 0o600))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, dockerCompose,
		append([]string{"--env-file", emptyEnvFile, "-f", composePath}, args...)...)
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if _, secret := testVars[name]; !secret {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// stage is one FROM section of the Dockerfile.
type stage struct {
	base, name   string
	instructions []instruction
}

type instruction struct {
	keyword, args string
}

func loadDockerfile(t *testing.T) []stage {
	t.Helper()
	data, err := os.ReadFile(dockerfilePath)
	require.NoError(t, err)

	var stages []stage
	var logical strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if strings.HasSuffix(trimmed, `\`) {
			logical.WriteString(strings.TrimSuffix(trimmed, `\`) + " ")
			continue
		}
		logical.WriteString(trimmed)
		text := strings.TrimSpace(logical.String())
		logical.Reset()
		if text == "" {
			continue
		}
		keyword, args, _ := strings.Cut(text, " ")
		in := instruction{keyword: strings.ToUpper(keyword), args: strings.Join(strings.Fields(args), " ")}
		if in.keyword == "FROM" {
			fields := strings.Fields(in.args)
			s := stage{base: fields[0]}
			if len(fields) == 3 && strings.EqualFold(fields[1], "AS") {
				s.name = fields[2]
			}
			stages = append(stages, s)
			continue
		}
		require.NotEmpty(t, stages, "instruction %s before FROM", in.keyword)
		stages[len(stages)-1].instructions = append(stages[len(stages)-1].instructions, in)
	}
	return stages
}

// find returns the first instruction of that keyword whose arguments contain substr.
func (s stage) find(keyword, substr string) string {
	for _, in := range s.instructions {
		if in.keyword == keyword && strings.Contains(in.args, substr) {
			return in.args
		}
	}
	return ""
}

func (s stage) all(keyword string) []string {
	var args []string
	for _, in := range s.instructions {
		if in.keyword == keyword {
			args = append(args, in.args)
		}
	}
	return args
}

func (s stage) last(keyword string) string {
	all := s.all(keyword)
	if len(all) == 0 {
		return ""
	}
	return all[len(all)-1]
}

// env is what the stage's ENV instructions (NAME=value form) set.
func (s stage) env() map[string]string {
	env := map[string]string{}
	for _, args := range s.all("ENV") {
		for _, kv := range strings.Fields(args) {
			if k, v, ok := strings.Cut(kv, "="); ok {
				env[k] = v
			}
		}
	}
	return env
}
