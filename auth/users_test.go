package auth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func cheapHash(t *testing.T, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func TestUsersFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "users.json")
	body := `{"users": {"alice": {"password": "` + cheapHash(t, "s3cret") + `",
		"publish": ["devices/%c/out"], "subscribe": ["devices/%c/in/#"]}}}`
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	us, err := LoadUsers(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	u, err := us.Authenticate("alice", "s3cret")
	if err != nil {
		t.Fatalf("good password: %v", err)
	}
	p := u.Permissions("dev1")
	if !p.CanPublish("devices/dev1/out") || p.CanPublish("devices/dev2/out") || !p.CanSubscribe("devices/dev1/in/+") {
		t.Fatal("user ACL not applied")
	}
	for _, tc := range []struct{ user, pw string }{{"alice", "wrong"}, {"mallory", "s3cret"}, {"alice", ""}} {
		if _, err := us.Authenticate(tc.user, tc.pw); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("%s/%s: %v", tc.user, tc.pw, err)
		}
	}
}

func TestUsersValidation(t *testing.T) {
	t.Parallel()
	_, err := NewUsers(map[string]UserEntry{
		"plain": {Password: "not-a-hash"},
		"a/b":   {Password: cheapHash(t, "x")},
		"acl":   {Password: cheapHash(t, "x"), Subscribe: []string{"a/#/b"}},
	})
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{`"plain"`, `"a/b"`, `"acl"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q misses %s", err, want)
		}
	}
}
