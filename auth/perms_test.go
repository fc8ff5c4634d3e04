package auth

import (
	"strings"
	"testing"
)

func TestPermissions(t *testing.T) {
	t.Parallel()
	g := Grants{
		Pub: []string{"devices/%c/out", "users/%u/+/status", "$SYS/broker/cmd"},
		Sub: []string{"devices/%c/in/#", "chat/+", "shared/#", "$SYS/broker/#"},
	}
	type check struct {
		op    string // pub, sub, recv
		topic string
		want  bool
	}
	tests := []struct {
		name     string
		admin    bool
		identity string
		clientID string
		checks   []check
	}{
		{
			name: "templates expanded", identity: "alice", clientID: "alice-1",
			checks: []check{
				{"pub", "devices/alice-1/out", true},
				{"pub", "devices/bob-1/out", false},
				{"pub", "users/alice/x/status", true},
				{"pub", "users/bob/x/status", false},
				{"sub", "devices/alice-1/in/#", true},
				{"sub", "devices/alice-1/in/+/x", true},
				{"sub", "devices/+/in/#", false},
				{"sub", "chat/room", true},
				{"sub", "chat/#", false},
				{"sub", "$share/g/shared/+", true},
				{"sub", "$share/g/chat/#", false},
				{"sub", "$share//chat/a", false},
				{"recv", "chat/room", true},
				{"recv", "chat/room/deep", false},
				{"recv", "devices/alice-1/in/a/b", true},
			},
		},
		{
			name: "SYS needs admin", identity: "alice", clientID: "c",
			checks: []check{
				{"sub", "$SYS/#", false},
				{"sub", "$SYS/broker/uptime", false},
				{"pub", "$SYS/broker/cmd", false},
				{"recv", "$SYS/broker/uptime", false},
			},
		},
		{
			name: "admin gets SYS", admin: true, identity: "root", clientID: "c",
			checks: []check{
				{"sub", "$SYS/#", true},
				{"recv", "$SYS/broker/uptime", true},
				{"pub", "$SYS/broker/cmd", true},
				{"pub", "$SYS/other", false},
			},
		},
		{
			name: "wildcard identity never widens", identity: "#", clientID: "+",
			checks: []check{
				{"pub", "devices/+/out", false},
				{"pub", "devices/x/out", false},
				{"pub", "users/#/x/status", false},
				{"sub", "devices/+/in/#", false},
				{"sub", "chat/a", true}, // untemplated grants stay
			},
		},
		{
			name: "slash in client id never reshapes", identity: "alice", clientID: "a/b",
			checks: []check{
				{"pub", "devices/a/b/out", false},
				{"pub", "users/alice/x/status", true},
			},
		},
		{
			name: "invalid topics refused", identity: "alice", clientID: "c",
			checks: []check{
				{"pub", "chat/+", false},
				{"pub", "", false},
				{"sub", "chat/#/x", false},
				{"sub", "", false},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := Compile(g, tt.admin, tt.identity, tt.clientID)
			for _, c := range tt.checks {
				var got bool
				switch c.op {
				case "pub":
					got = p.CanPublish(c.topic)
				case "sub":
					got = p.CanSubscribe(c.topic)
				case "recv":
					got = p.CanReceive(c.topic)
				}
				if got != c.want {
					t.Errorf("%s %q = %v, want %v", c.op, c.topic, got, c.want)
				}
			}
		})
	}
}

func TestNilPermissionsDenyAll(t *testing.T) {
	t.Parallel()
	var p *Permissions
	if p.CanPublish("a") || p.CanSubscribe("a") || p.CanReceive("a") || p.Admin() {
		t.Fatal("nil permissions allowed something")
	}
}

func TestGrantsValidate(t *testing.T) {
	t.Parallel()
	if err := (Grants{Pub: []string{"a/%u/#"}, Sub: []string{"+/%c"}}).Validate(); err != nil {
		t.Fatalf("valid grants: %v", err)
	}
	err := (Grants{Pub: []string{"a/#/b"}, Sub: []string{"$share/g/a", "x+"}}).Validate()
	if err == nil {
		t.Fatal("invalid grants accepted")
	}
	for _, want := range []string{`"a/#/b"`, `"$share/g/a"`, `"x+"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}
