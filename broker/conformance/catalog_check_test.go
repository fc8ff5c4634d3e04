package conformance_test

// Tests of the catalog checks themselves: each check must fail on the
// mistake it exists to catch. Citations here are assembled from pieces (cite)
// so that the module scan does not count them.

import (
	"strings"
	"testing"
)

// cite builds the bracketed citation of id, out of the scanner's sight.
func cite(id string) string { return "[" + id + "]" }

func TestParseCatalogRejectsMalformedLines(t *testing.T) {
	t.Parallel()
	v5 := specs[0]
	tests := []struct {
		name, line, want string
	}{
		{"too few fields", "MQTT-1.5.4-1\tboth", "3 or 4 tab-separated fields"},
		{"bad id", "MQTT-1.5.4\tboth\ttext\t", "is not of the form"},
		{"3.1 id in a numbered catalog", "MQIsdp-1\tserver\ttext\t", "is not of the form"},
		{"bad role", "MQTT-1.5.4-1\tbroker\ttext\t", "is not server, client or both"},
		{"empty paraphrase", "MQTT-1.5.4-1\tboth\t \t", "paraphrase must be 1 to"},
		{"long paraphrase", "MQTT-1.5.4-1\tboth\t" + strings.Repeat("x", maxText+1) + "\t", "paraphrase must be 1 to"},
		{"pipe breaks the table", "MQTT-1.5.4-1\tboth\ta | b\t", "must not contain"},
		{"note that is not n/a", "MQTT-1.5.4-1\tboth\ttext\ttodo", "note must be empty or"},
		{"n/a without a reason", "MQTT-1.5.4-1\tboth\ttext\tn/a: ", "note must be empty or"},
		{"n/a on a client rule", "MQTT-3.1.2-20\tclient\ttext\tn/a: not ours", "only server or both rules can be n/a"},
		{"duplicate id", "MQTT-1.5.4-1\tboth\ttext\t\nMQTT-1.5.4-1\tserver\tother\t", "duplicate id, first on line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseCatalog(v5, []byte(tt.line+"\n"))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("parseCatalog(%q) = %v, want an error containing %q", tt.line, err, tt.want)
			}
		})
	}
}

func TestParseCatalogAcceptsCommentsAndOptionalNote(t *testing.T) {
	t.Parallel()
	data := "# comment\n\nMQTT-1.5.4-1\tboth\ttext\nMQTT-4.7.3-3\tboth\ttext\tn/a: cannot be encoded\n"
	c, err := parseCatalog(specs[0], []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.rules) != 2 || !c.byID["MQTT-4.7.3-3"].na() || c.byID["MQTT-1.5.4-1"].na() {
		t.Fatalf("rules = %+v", c.rules)
	}
}

func TestScanCitations(t *testing.T) {
	t.Parallel()
	text := strings.Join([]string{
		"// the broker closes it " + cite("MQTT-3.1.2-22") + " and " + cite("MQTT-3.1.2-24@3.1.1"),
		`t.Fatal("3.1 client refused ` + cite("MQIsdp-1") + `")`,
		"// see section " + cite("MQTT-4.3.2") + " for the flows",
		"// a typo " + cite("MQTT-3.1.2.7"),
		"// wrong version " + cite("MQTT-3.1.2-2@3.1"),
		"// free text [MQTT-3.1.2-5 in 3.1.1] is not a citation",
	}, "\n")
	cs, errs := scanCitations("x_test.go", []byte(text))
	want := []citation{
		{spec: "5.0", id: "MQTT-3.1.2-22", file: "x_test.go", line: 1},
		{spec: "3.1.1", id: "MQTT-3.1.2-24", file: "x_test.go", line: 1},
		{spec: "3.1", id: "MQIsdp-1", file: "x_test.go", line: 2},
	}
	if len(cs) != len(want) {
		t.Fatalf("citations = %+v, want %+v", cs, want)
	}
	for i := range want {
		if cs[i] != want[i] {
			t.Errorf("citation %d = %+v, want %+v", i, cs[i], want[i])
		}
	}
	if len(errs) != 2 || !strings.HasPrefix(errs[0].Error(), "x_test.go:4: ") || !strings.HasPrefix(errs[1].Error(), "x_test.go:5: ") {
		t.Fatalf("errors = %v, want one for line 4 and one for line 5", errs)
	}
}

func TestIDOrderAndSections(t *testing.T) {
	t.Parallel()
	rules := []rule{{id: "MQTT-3.10.4-1"}, {id: "MQTT-3.9.3-2"}, {id: "MQTT-3.1.2-10"}, {id: "MQTT-3.1.2-9"}, {id: "MQTT-4.2-1"}}
	sortRules(rules)
	var got []string
	for _, r := range rules {
		got = append(got, r.id+"="+section(r.id))
	}
	want := "MQTT-3.1.2-9=3.1 MQTT-3.1.2-10=3.1 MQTT-3.9.3-2=3.9 MQTT-3.10.4-1=3.10 MQTT-4.2-1=4.2"
	if strings.Join(got, " ") != want {
		t.Fatalf("order = %s, want %s", strings.Join(got, " "), want)
	}
	for id, want := range map[string]string{"MQTT-6.0.0-1": "6", "MQTT-7.1.1-1": "7.1", "MQIsdp-3": "MQIsdp"} {
		if got := section(id); got != want {
			t.Errorf("section(%s) = %s, want %s", id, got, want)
		}
	}
}

func TestReportCountsAndStatuses(t *testing.T) {
	t.Parallel()
	data := "MQTT-3.1.0-2\tserver\tsecond CONNECT closes\t\n" +
		"MQTT-3.1.2-20\tclient\tclient pings\t\n" +
		"MQTT-3.2.2-9\tserver\tmax QoS announced\tn/a: QoS 2 supported\n" +
		"MQTT-3.1.0-1\tserver\tCONNECT first\t\n"
	c, err := parseCatalog(specs[0], []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	cs := []citation{
		{spec: "5.0", id: "MQTT-3.1.0-2", file: "broker/conformance/connect_test.go"},
		{spec: "5.0", id: "MQTT-3.1.0-2", file: "integration/x_test.go"},
		{spec: "3.1.1", id: "MQTT-3.1.0-1", file: "broker/conformance/connect_test.go"}, // other spec: no effect
	}
	out := string(report([]catalog{c}, cs))
	for _, want := range []string{
		"| MQTT 5.0 | 3 | 1 | 1 | 1 | 1 |",
		"| MQTT-3.1.0-1 | server | CONNECT first | open |\n| MQTT-3.1.0-2 | server | second CONNECT closes | tested (connect_test.go, integration/x_test.go) |",
		"| MQTT-3.1.2-20 | client | client pings | not a broker duty |",
		"| MQTT-3.2.2-9 | server | max QoS announced | n/a: QoS 2 supported |",
		"### 3.1 CONNECT",
		"### 3.2 CONNACK",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}
