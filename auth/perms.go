package auth

import (
	"fmt"
	"strings"
)

// Grants are the topic filters a token (or a user) may publish and subscribe
// to. Filters may use the templates %u (the identity) and %c (the client id),
// expanded per connection by Compile.
type Grants struct {
	// Pub lists the filters the client may publish to (a topic must match one).
	Pub []string `json:"pub,omitempty" yaml:"pub"`
	// Sub lists the filters the client may subscribe to (a requested filter
	// must be contained in one) and receive messages from.
	Sub []string `json:"sub,omitempty" yaml:"sub"`
}

// Validate reports every filter that is not a valid MQTT filter once
// templates are expanded with a safe placeholder, joined into one error.
func (g Grants) Validate() error {
	var errs []string
	check := func(kind string, list []string) {
		for _, f := range list {
			x := expandTemplate(f, "u", "c")
			if !ValidFilter(x) || strings.HasPrefix(x, sharePrefix) {
				errs = append(errs, fmt.Sprintf("%s filter %q is not a valid topic filter", kind, f))
			}
		}
	}
	check("pub", g.Pub)
	check("sub", g.Sub)
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrInvalidConfig, strings.Join(errs, "; "))
}

// Permissions is a compiled, immutable set of grants for one connection.
// It is safe for concurrent use. The zero value allows nothing.
type Permissions struct {
	pub   [][]string
	sub   [][]string
	admin bool
}

// Compile expands the %u and %c templates in g with identity and clientID and
// pre-splits the filters for fast matching.
//
// A template value that is empty or contains '+', '#', '/' or NUL could widen
// or reshape a grant, so every filter that uses it is dropped (the grant
// narrows, never widens). Invalid filters are dropped too; use Grants.Validate
// to report them at configuration time. A filter on $SYS is kept only when
// admin is true; admin also grants subscribing to all of $SYS.
func Compile(g Grants, admin bool, identity, clientID string) *Permissions {
	p := &Permissions{admin: admin}
	p.pub = compileList(g.Pub, admin, identity, clientID)
	p.sub = compileList(g.Sub, admin, identity, clientID)
	if admin {
		p.sub = append(p.sub, []string{sysLevel, "#"})
	}
	return p
}

func compileList(list []string, admin bool, identity, clientID string) [][]string {
	out := make([][]string, 0, len(list))
	for _, f := range list {
		if strings.Contains(f, "%u") && !safeTemplateValue(identity) ||
			strings.Contains(f, "%c") && !safeTemplateValue(clientID) {
			continue
		}
		x := expandTemplate(f, identity, clientID)
		if !ValidFilter(x) || strings.HasPrefix(x, sharePrefix) {
			continue
		}
		levels := splitLevels(x)
		if levels[0] == sysLevel && !admin {
			continue
		}
		out = append(out, levels)
	}
	return out
}

// safeTemplateValue reports whether v may be substituted into a filter.
func safeTemplateValue(v string) bool {
	return v != "" && !strings.ContainsAny(v, "+#/\x00")
}

func expandTemplate(f, identity, clientID string) string {
	if !strings.Contains(f, "%") {
		return f
	}
	// One pass, left to right, so a substituted value is never re-expanded.
	var b strings.Builder
	b.Grow(len(f) + len(identity) + len(clientID))
	for i := 0; i < len(f); i++ {
		if f[i] == '%' && i+1 < len(f) {
			switch f[i+1] {
			case 'u':
				b.WriteString(identity)
				i++
				continue
			case 'c':
				b.WriteString(clientID)
				i++
				continue
			}
		}
		b.WriteByte(f[i])
	}
	return b.String()
}

// Admin reports whether the permissions carry the admin flag.
func (p *Permissions) Admin() bool { return p != nil && p.admin }

// CanPublish reports whether topic may be published to: it must be a valid
// topic name matched by a publish grant. Topics on $SYS need admin and a
// grant naming $SYS.
func (p *Permissions) CanPublish(topic string) bool {
	if p == nil || !ValidTopic(topic) || strings.HasPrefix(topic, sharePrefix) {
		return false
	}
	for _, g := range p.pub {
		if matchLevels(g, topic) {
			return true
		}
	}
	return false
}

// CanSubscribe reports whether filter may be subscribed to: it must be
// contained in a subscribe grant (a grant "a/+" does not allow "a/#").
// A shared subscription $share/{group}/{f} is checked on f. $SYS filters
// need admin.
//
// For a topic name (no wildcards) containment is the same as matching, so
// CanSubscribe also answers whether a message on that topic may be
// delivered; CanReceive is the cheaper spelling of that check.
func (p *Permissions) CanSubscribe(filter string) bool {
	if p == nil {
		return false
	}
	_, f, _, valid := SplitShared(filter)
	if !valid || !ValidFilter(f) {
		return false
	}
	for _, g := range p.sub {
		if containsLevels(g, f) {
			return true
		}
	}
	return false
}

// CanReceive reports whether a message published on topic may be delivered:
// a subscribe grant must match it. It does not allocate.
func (p *Permissions) CanReceive(topic string) bool {
	if p == nil || topic == "" {
		return false
	}
	for _, g := range p.sub {
		if matchLevels(g, topic) {
			return true
		}
	}
	return false
}
