package pgserver

import (
	"cmp"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// debianRoot is where Debian and Ubuntu install the server binaries, one folder per major
// version; they are not on PATH there, only the client wrappers are.
const debianRoot = "/usr/lib/postgresql"

type binaries struct {
	initdb   string
	postgres string
}

// findBinaries prefers preferMajor (the version an existing data dir was made with, since
// a server refuses data of another major version), then the highest version under root,
// then PATH.
func findBinaries(root, preferMajor string) (binaries, error) {
	if preferMajor != "" {
		if b, ok := binariesIn(filepath.Join(root, preferMajor, "bin")); ok {
			return b, nil
		}
	}
	for _, v := range installedVersions(root) {
		if b, ok := binariesIn(filepath.Join(root, v, "bin")); ok {
			return b, nil
		}
	}

	var b binaries
	var missing []string
	var err error
	if b.initdb, err = exec.LookPath("initdb"); err != nil {
		missing = append(missing, "initdb")
	}
	if b.postgres, err = exec.LookPath("postgres"); err != nil {
		missing = append(missing, "postgres")
	}
	if len(missing) > 0 {
		return binaries{}, fmt.Errorf("find postgresql server binaries: %s not found in %s/<version>/bin nor on PATH (install Debian's postgresql package)",
			strings.Join(missing, " and "), root)
	}
	return b, nil
}

// installedVersions lists the version folders under root, highest first. Versions compare
// numerically, so 9.6 sorts below 13.
func installedVersions(root string) []string {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil
	}
	type version struct {
		name  string
		parts []int
	}
	var vs []version
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		parts, ok := parseVersion(e.Name())
		if !ok {
			continue
		}
		vs = append(vs, version{e.Name(), parts})
	}
	slices.SortFunc(vs, func(a, b version) int {
		return -cmp.Or(slices.Compare(a.parts, b.parts), strings.Compare(a.name, b.name))
	})
	names := make([]string, len(vs))
	for i, v := range vs {
		names[i] = v.name
	}
	return names
}

func parseVersion(s string) ([]int, bool) {
	var parts []int
	for p := range strings.SplitSeq(s, ".") {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return nil, false
		}
		parts = append(parts, n)
	}
	return parts, true
}

func binariesIn(dir string) (binaries, bool) {
	b := binaries{initdb: filepath.Join(dir, "initdb"), postgres: filepath.Join(dir, "postgres")}
	return b, isExecutable(b.initdb) && isExecutable(b.postgres)
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
