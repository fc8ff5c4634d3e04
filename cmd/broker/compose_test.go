package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// No Docker engine runs here, so the compose file is checked by loading it
// with the compose specification's own loader.
func TestComposeFileRunsTheBrokerWithItsPortsAndDataVolume(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: "docker-compose.yml", Content: b}},
		Environment: types.Mapping{},
	}, func(o *loader.Options) { o.SetProjectName("courier", true) })
	if err != nil {
		t.Fatalf("load compose file: %v", err)
	}
	svc, ok := p.Services["broker"]
	if !ok {
		t.Fatalf("no broker service; have %v", p.ServiceNames())
	}
	if svc.Build == nil || svc.Build.Context != root {
		t.Errorf("broker is not built from the repository: %+v", svc.Build)
	}
	want := map[string]bool{"1883": false, "8083": false, "8080": false}
	for _, port := range svc.Ports {
		if _, ok := want[port.Published]; ok && port.Target == mustAtoi(t, port.Published) {
			want[port.Published] = true
			if port.HostIP != "127.0.0.1" {
				t.Errorf("port %s published on %q, want loopback", port.Published, port.HostIP)
			}
		}
	}
	for port, seen := range want {
		if !seen {
			t.Errorf("port %s not published", port)
		}
	}
	var hasData bool
	for _, v := range svc.Volumes {
		if v.Type == types.VolumeTypeVolume && v.Target == "/data" && v.Source == "courier-data" {
			hasData = true
		}
	}
	if !hasData {
		t.Errorf("no named volume on /data: %+v", svc.Volumes)
	}
	if _, ok := p.Volumes["courier-data"]; !ok {
		t.Error("volume courier-data is not declared")
	}
	df, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CGO_ENABLED=0", "USER nonroot", `"--data-dir", "/data"`} {
		if !strings.Contains(string(df), want) {
			t.Errorf("Dockerfile lacks %s", want)
		}
	}
}

func mustAtoi(t *testing.T, s string) uint32 {
	var n uint32
	for _, c := range s {
		if c < '0' || c > '9' {
			t.Fatalf("port %q", s)
		}
		n = n*10 + uint32(c-'0')
	}
	return n
}
