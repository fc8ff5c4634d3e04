package integration

import (
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/courier-mqtt/courier/"

// TestPackageLayoutKeepsItsArrows keeps the import rules of STYLE.md honest:
// auth is pure Go, hooks never reach the broker or client, the client never
// reaches the broker side.
func TestPackageLayoutKeepsItsArrows(t *testing.T) {
	rules := []struct {
		pkg       string
		forbidden []string
	}{
		{"./auth/...", []string{"github.com/mochi-mqtt/", "github.com/eclipse/paho", "github.com/dgraph-io/badger", mod + "broker", mod + "hooks", mod + "client"}},
		{"./hooks/...", []string{mod + "broker", mod + "client"}},
		{"./broker", []string{mod + "client"}},
		{"./client/...", []string{"github.com/mochi-mqtt/", "github.com/dgraph-io/badger", mod + "broker", mod + "hooks", mod + "auth"}},
	}
	for _, r := range rules {
		t.Run(r.pkg, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-e", "-deps", "../"+strings.TrimPrefix(r.pkg, "./")).CombinedOutput()
			if strings.Contains(string(out), "matched no packages") {
				t.Skipf("%s does not exist yet", r.pkg)
			}
			if err != nil {
				t.Fatalf("go list: %v\n%s", err, out)
			}
			for _, dep := range strings.Fields(string(out)) {
				for _, f := range r.forbidden {
					if strings.HasPrefix(dep, f) {
						t.Errorf("%s depends on %s", r.pkg, dep)
					}
				}
			}
		})
	}
}
