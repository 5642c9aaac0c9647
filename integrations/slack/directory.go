package slack

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultDirectoryTTL is how long the Directory trusts what Slack told it.
const DefaultDirectoryTTL = 5 * time.Minute

// DirectoryConfig says who Slack users are in Trainyard.
type DirectoryConfig struct {
	// Users maps a Slack user id to a principal name; it wins over the email.
	Users map[string]string
	// Emails maps a Slack profile email (any case) to a principal name. A user in neither map
	// is the principal named by their email, lowercased.
	Emails map[string]string
	// Roles are each principal's roles from configuration.
	Roles map[string][]string
	// GroupRoles maps a Slack user group id (S…) to the role its members hold.
	GroupRoles map[string]string
	// TTL is how long emails and group members are cached; DefaultDirectoryTTL when zero.
	TTL time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Identity is who a Slack user is in Trainyard.
type Identity struct {
	Principal   string
	Roles       []string
	SlackUserID string
	// Email is set when the principal came from the user's email.
	Email string
}

// ErrUnknownUser: the Slack user maps to no principal (no mapping, and no email to go by).
var ErrUnknownUser = errors.New("slack user is not known to trainyard")

// Directory maps Slack users to principals and roles, caching what it asks Slack for TTL. It
// is safe for concurrent use.
type Directory struct {
	users Users
	cfg   DirectoryConfig

	mu     sync.Mutex
	emails map[string]cached[string]
	groups map[string]cached[map[string]bool]
}

type cached[T any] struct {
	v       T
	expires time.Time
}

// NewDirectory returns a Directory asking users for what the config does not say.
func NewDirectory(users Users, cfg DirectoryConfig) *Directory {
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultDirectoryTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	emails := make(map[string]string, len(cfg.Emails))
	for e, p := range cfg.Emails {
		emails[strings.ToLower(strings.TrimSpace(e))] = p
	}
	cfg.Emails = emails
	return &Directory{users: users, cfg: cfg, emails: map[string]cached[string]{}, groups: map[string]cached[map[string]bool]{}}
}

// Lookup returns the principal and roles of a Slack user: configured roles of the principal,
// merged with the roles of the configured user groups the user belongs to, sorted. A failure to
// ask Slack is an error rather than fewer roles, so a person is never told they lack a role
// because Slack was slow.
func (d *Directory) Lookup(ctx context.Context, userID string) (Identity, error) {
	if userID == "" {
		return Identity{}, fmt.Errorf("%w: no slack user id", ErrUnknownUser)
	}
	id := Identity{SlackUserID: userID}
	if p, ok := d.cfg.Users[userID]; ok && p != "" {
		id.Principal = p
	} else {
		email, err := d.email(ctx, userID)
		if errors.Is(err, ErrNoEmail) {
			return Identity{}, fmt.Errorf("%w: slack user %s has no email and no configured principal", ErrUnknownUser, userID)
		}
		if err != nil {
			return Identity{}, err
		}
		id.Email = email
		id.Principal = email
		if p, ok := d.cfg.Emails[email]; ok && p != "" {
			id.Principal = p
		}
	}

	roles := append([]string(nil), d.cfg.Roles[id.Principal]...)
	for _, group := range sortedKeys(d.cfg.GroupRoles) {
		members, err := d.members(ctx, group)
		if err != nil {
			return Identity{}, err
		}
		if members[userID] {
			roles = append(roles, d.cfg.GroupRoles[group])
		}
	}
	slices.Sort(roles)
	id.Roles = slices.Compact(roles)
	return id, nil
}

func (d *Directory) email(ctx context.Context, userID string) (string, error) {
	now := d.cfg.Now()
	d.mu.Lock()
	c, ok := d.emails[userID]
	d.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.v, nil
	}
	// Not holding the lock while Slack answers: two concurrent misses ask twice, which is
	// cheaper than serialising every lookup behind one slow call.
	email, err := d.users.UserEmail(ctx, userID)
	if err != nil {
		return "", err
	}
	email = strings.ToLower(strings.TrimSpace(email))
	d.mu.Lock()
	d.emails[userID] = cached[string]{v: email, expires: now.Add(d.cfg.TTL)}
	d.mu.Unlock()
	return email, nil
}

func (d *Directory) members(ctx context.Context, group string) (map[string]bool, error) {
	now := d.cfg.Now()
	d.mu.Lock()
	c, ok := d.groups[group]
	d.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.v, nil
	}
	list, err := d.users.UserGroupMembers(ctx, group)
	if err != nil {
		return nil, err
	}
	set := make(map[string]bool, len(list))
	for _, u := range list {
		set[u] = true
	}
	d.mu.Lock()
	d.groups[group] = cached[map[string]bool]{v: set, expires: now.Add(d.cfg.TTL)}
	d.mu.Unlock()
	return set, nil
}

// Forget drops what the Directory cached about a user, and every group's members (a group
// the user just joined does not list them yet), so the next Lookup asks Slack again.
func (d *Directory) Forget(userID string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.emails, userID)
	clear(d.groups)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
