package conformance_test

// The catalog of normative statements (testdata/*.txt), the citations that
// tie tests to it, and the CONFORMANCE.md report generated from both. This
// file must not contain a citation itself: its examples are built from
// pieces so that the scanner does not count them.

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite CONFORMANCE.md at the repository root from the catalogs and citations")

// spec is one specification and its catalog.
type spec struct {
	key    string // version key used in citations and reports: "5.0", "3.1.1", "3.1"
	title  string // heading in CONFORMANCE.md
	file   string // catalog under testdata/
	suffix string // how a citation of this spec ends: "" or "@3.1.1"
	idRE   *regexp.Regexp
}

var (
	numberedID = regexp.MustCompile(`^MQTT-\d+(?:\.\d+)+-\d+$`)
	mqisdpID   = regexp.MustCompile(`^MQIsdp-\d+$`)

	specs = []spec{
		{key: "5.0", title: "MQTT 5.0", file: "mqtt-v5.0.txt", idRE: numberedID},
		{key: "3.1.1", title: "MQTT 3.1.1", file: "mqtt-v3.1.1.txt", suffix: "@3.1.1", idRE: numberedID},
		{key: "3.1", title: "MQTT 3.1 (MQIsdp)", file: "mqtt-v3.1.txt", idRE: mqisdpID},
	}

	// candidateRE finds everything that looks like a citation; citationRE
	// and sectionRefRE then decide what it is.
	candidateRE  = regexp.MustCompile(`\[(?:MQTT|MQIsdp)-[^\]\s]*\]`)
	citationRE   = regexp.MustCompile(`^\x5b(MQTT-\d+(?:\.\d+)+-\d+)(@3\.1\.1)?\]$|^\[(MQIsdp-\d+)\]$`)
	sectionRefRE = regexp.MustCompile(`^\x5bMQTT-\d+(?:\.\d+){0,2}\]$`)
)

const (
	roleServer = "server"
	roleClient = "client"
	roleBoth   = "both"
	naPrefix   = "n/a: "
	maxText    = 120
)

// rule is one catalog line.
type rule struct {
	id, role, text, note string
	line                 int
}

func (r rule) serverSide() bool { return r.role == roleServer || r.role == roleBoth }
func (r rule) na() bool         { return strings.HasPrefix(r.note, naPrefix) }

// catalog is one specification's parsed catalog.
type catalog struct {
	spec  spec
	rules []rule
	byID  map[string]rule
}

// parseCatalog reads a catalog and reports every malformed line at once.
func parseCatalog(s spec, data []byte) (catalog, error) {
	c := catalog{spec: s, byID: map[string]rule{}}
	var errs []error
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("%s:%d: %s", s.file, n, fmt.Sprintf(format, args...)))
		}
		f := strings.Split(line, "\t")
		if len(f) < 3 || len(f) > 4 {
			bad("want 3 or 4 tab-separated fields (id, role, paraphrase, note), got %d", len(f))
			continue
		}
		r := rule{id: f[0], role: f[1], text: f[2], line: n}
		if len(f) == 4 {
			r.note = f[3]
		}
		switch {
		case !s.idRE.MatchString(r.id):
			bad("id %q is not of the form %s", r.id, s.idRE)
		case r.role != roleServer && r.role != roleClient && r.role != roleBoth:
			bad("%s: role %q is not server, client or both", r.id, r.role)
		case strings.TrimSpace(r.text) == "" || len(r.text) > maxText:
			bad("%s: paraphrase must be 1 to %d bytes, is %d", r.id, maxText, len(r.text))
		case strings.ContainsAny(r.text+r.note, "|`"):
			bad("%s: paraphrase and note must not contain | or `", r.id)
		case r.note != "" && (!r.na() || strings.TrimSpace(strings.TrimPrefix(r.note, naPrefix)) == ""):
			bad("%s: note must be empty or %q followed by a reason", r.id, naPrefix)
		case r.na() && !r.serverSide():
			bad("%s: only server or both rules can be n/a; a client rule is never the broker's to test", r.id)
		default:
			if prev, dup := c.byID[r.id]; dup {
				bad("%s: duplicate id, first on line %d", r.id, prev.line)
				continue
			}
			c.byID[r.id] = r
			c.rules = append(c.rules, r)
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", s.file, err))
	}
	return c, errors.Join(errs...)
}

// citation is one rule cited by a test file.
type citation struct {
	spec string // spec key
	id   string
	file string // slash path relative to the module root
	line int
}

// scanCitations finds the citations in one file's text. Bracketed text that
// starts like a citation but is neither a citation nor a section reference
// is returned as an error naming the line.
func scanCitations(file string, data []byte) ([]citation, []error) {
	var cs []citation
	var errs []error
	for n, line := range strings.Split(string(data), "\n") {
		for _, cand := range candidateRE.FindAllString(line, -1) {
			m := citationRE.FindStringSubmatch(cand)
			switch {
			case m == nil && sectionRefRE.MatchString(cand):
				// A section reference such as "see 4.3.2", not a rule.
			case m == nil:
				errs = append(errs, fmt.Errorf("%s:%d: %s is not a citation: use an id with its statement number, e.g. MQTT-x.y.z-n, MQTT-x.y.z-n@3.1.1 or MQIsdp-n in brackets", file, n+1, cand))
			case m[3] != "":
				cs = append(cs, citation{spec: "3.1", id: m[3], file: file, line: n + 1})
			case m[2] != "":
				cs = append(cs, citation{spec: "3.1.1", id: m[1], file: file, line: n + 1})
			default:
				cs = append(cs, citation{spec: "5.0", id: m[1], file: file, line: n + 1})
			}
		}
	}
	return cs, errs
}

// moduleRoot walks up from the working directory to the directory that
// holds go.mod.
func moduleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// scanModule collects the citations of every _test.go file under root,
// skipping testdata, hidden and vendor directories and nested modules.
func scanModule(t testing.TB, root string) ([]citation, []error) {
	t.Helper()
	var cs []citation
	var errs []error
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			if path != root {
				if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if !strings.HasSuffix(d.Name(), "_test.go") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		c, e := scanCitations(filepath.ToSlash(rel), data)
		cs = append(cs, c...)
		errs = append(errs, e...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return cs, errs
}

// loadCatalogs parses the three catalogs, failing the test on any error.
func loadCatalogs(t testing.TB) []catalog {
	t.Helper()
	var cats []catalog
	for _, s := range specs {
		data, err := os.ReadFile(filepath.Join("testdata", s.file))
		if err != nil {
			t.Fatal(err)
		}
		c, err := parseCatalog(s, data)
		if err != nil {
			t.Fatal(err)
		}
		cats = append(cats, c)
	}
	return cats
}

// idKey orders ids by the numbers in them: MQTT-3.10.4-1 after MQTT-3.9.3-2.
func idKey(id string) []int {
	_, rest, _ := strings.Cut(id, "-")
	var key []int
	for _, part := range strings.FieldsFunc(rest, func(r rune) bool { return r == '.' || r == '-' }) {
		n, err := strconv.Atoi(part)
		if err != nil {
			n = -1
		}
		key = append(key, n)
	}
	return key
}

// section names the specification section a rule belongs to: the first two
// numbers of its id ("3.1" for MQTT-3.1.2-2), or the chapter alone when the
// second is 0 ("6" for MQTT-6.0.0-1). MQIsdp rules share one section.
func section(id string) string {
	if strings.HasPrefix(id, "MQIsdp-") {
		return "MQIsdp"
	}
	k := idKey(id)
	if len(k) < 3 || k[1] == 0 {
		return strconv.Itoa(k[0])
	}
	return strconv.Itoa(k[0]) + "." + strconv.Itoa(k[1])
}

func sortRules(rules []rule) {
	slices.SortFunc(rules, func(a, b rule) int { return slices.Compare(idKey(a.id), idKey(b.id)) })
}

func TestCatalogsParse(t *testing.T) {
	for _, c := range loadCatalogs(t) {
		if len(c.rules) == 0 {
			t.Errorf("%s: empty catalog", c.spec.file)
		}
	}
}

func TestCitationsNameCataloguedRules(t *testing.T) {
	cats := loadCatalogs(t)
	cs, errs := scanModule(t, moduleRoot(t))
	for _, err := range errs {
		t.Error(err)
	}
	bySpec := map[string]catalog{}
	for _, c := range cats {
		bySpec[c.spec.key] = c
	}
	for _, c := range cs {
		if _, ok := bySpec[c.spec].byID[c.id]; !ok {
			t.Errorf("%s:%d: cites %s%s, which is not in testdata/%s", c.file, c.line, c.id, bySpec[c.spec].spec.suffix, bySpec[c.spec].spec.file)
		}
	}
}

func TestNoCitedRuleIsMarkedNotApplicable(t *testing.T) {
	cats := loadCatalogs(t)
	cs, _ := scanModule(t, moduleRoot(t))
	for _, cat := range cats {
		files := citedFiles(cs, cat.spec.key)
		for _, r := range cat.rules {
			if r.na() && len(files[r.id]) > 0 {
				t.Errorf("%s%s is marked %q in testdata/%s:%d but cited by %s: drop the n/a note or the citation",
					r.id, cat.spec.suffix, r.note, cat.spec.file, r.line, strings.Join(files[r.id], ", "))
			}
		}
	}
}

// citedFiles maps each rule id of one spec to the sorted files citing it.
func citedFiles(cs []citation, key string) map[string][]string {
	m := map[string][]string{}
	for _, c := range cs {
		if c.spec == key && !slices.Contains(m[c.id], c.file) {
			m[c.id] = append(m[c.id], c.file)
		}
	}
	for _, files := range m {
		slices.Sort(files)
	}
	return m
}

func TestConformanceReport(t *testing.T) {
	root := moduleRoot(t)
	cats := loadCatalogs(t)
	cs, _ := scanModule(t, root)
	want := report(cats, cs)
	path := filepath.Join(root, "CONFORMANCE.md")
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v: generate it with go test ./broker/conformance -run TestConformanceReport -update", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("CONFORMANCE.md is out of date (%s): regenerate it with go test ./broker/conformance -run TestConformanceReport -update",
			firstDiff(got, want))
	}
}

// firstDiff names the first line where two texts differ.
func firstDiff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d is %q, want %q", i+1, gl, wl)
		}
	}
	return "identical lines"
}
