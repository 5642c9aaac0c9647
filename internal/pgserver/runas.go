package pgserver

import (
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// pgUser is the account PostgreSQL runs as when we are root: PostgreSQL refuses to run as
// root, and Debian's postgresql package creates this user.
const pgUser = "postgres"

// runAs says which account initdb and postgres run as.
type runAs struct {
	// cred is nil when they run as ourselves.
	cred   *syscall.Credential
	name   string
	home   string
	groups map[uint32]bool
}

func currentRunAs() (*runAs, error) {
	if os.Geteuid() != 0 {
		return &runAs{}, nil
	}
	u, err := user.Lookup(pgUser)
	if err != nil {
		return nil, fmt.Errorf("postgresql refuses to run as root, and there is no %q user to run it as (install Debian's postgresql package): %w", pgUser, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parse uid %q of user %q: %w", u.Uid, pgUser, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parse gid %q of user %q: %w", u.Gid, pgUser, err)
	}
	groups := map[uint32]bool{uint32(gid): true}
	var supplementary []uint32
	if ids, err := u.GroupIds(); err == nil {
		for _, id := range ids {
			if g, err := strconv.ParseUint(id, 10, 32); err == nil {
				groups[uint32(g)] = true
				supplementary = append(supplementary, uint32(g))
			}
		}
	}
	// Credential rather than `runuser`: runuser ignores SIGINT and answers SIGTERM with a
	// SIGKILL two seconds later, so postgres could never get a clean fast shutdown through it.
	return &runAs{
		cred:   &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: supplementary},
		name:   u.Username,
		home:   u.HomeDir,
		groups: groups,
	}, nil
}

func (r *runAs) switches() bool { return r.cred != nil }

func (r *runAs) sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: r.cred}
}

// env is our environment, with the identity variables of the account we switch to, and
// without the PG* variables that would point initdb or postgres elsewhere.
func (r *runAs) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "PG") {
			continue
		}
		if r.switches() && (k == "HOME" || k == "USER" || k == "LOGNAME") {
			continue
		}
		env = append(env, kv)
	}
	if r.switches() {
		env = append(env, "HOME="+r.home, "USER="+r.name, "LOGNAME="+r.name)
	}
	return env
}

// chown hands path to the run account; a no-op when we run as ourselves.
func (r *runAs) chown(path string) error {
	if !r.switches() {
		return nil
	}
	if err := os.Lchown(path, int(r.cred.Uid), int(r.cred.Gid)); err != nil {
		return fmt.Errorf("chown %s to %s: %w", path, r.name, err)
	}
	return nil
}

func (r *runAs) chownAll(root string) error {
	if !r.switches() {
		return nil
	}
	return filepath.WalkDir(root, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return r.chown(path)
	})
}

// checkReachable fails early, with a message that says what to do, when the run account
// cannot get to dir: as root it is easy to pick a folder under /root, which postgres
// would only report as an obscure "permission denied".
func (r *runAs) checkReachable(dir string) error {
	if !r.switches() {
		return nil
	}
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("check access to %s: %w", d, err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		perm := fi.Mode().Perm()
		var searchable bool
		switch {
		case st.Uid == r.cred.Uid:
			searchable = perm&0o100 != 0
		case r.groups[st.Gid]:
			searchable = perm&0o010 != 0
		default:
			searchable = perm&0o001 != 0
		}
		if !searchable {
			return fmt.Errorf("data dir %s: the %q user that postgres runs as cannot enter %s (mode %v): choose a data dir elsewhere or make it searchable",
				dir, r.name, d, perm)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}
