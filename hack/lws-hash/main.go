// Command lws-hash prints what the upstream LeaderWorkerSet controller (sigs.k8s.io/lws, the version in
// go.mod) computes as the revision of each manifest in testdata/: the template-revision-hash label and the
// ControllerRevision name, by calling upstream's own revision.NewRevision on a fake API client. The
// unit test tests/unit/leaderworker/test_lws_revision.py holds the printed values as fixed data.
//
// Each manifest (JSON, so that no YAML dialect decides what a value is) stands for the object as the API
// server stores it: every defaulted field written out, nothing the CRD would prune. It is decoded into
// upstream's typed object as its controller reads it; a note says when upstream's defaulting webhook
// would still change it (then the manifest is not what upstream stores).
//
//	cd hack/lws-hash && GOFLAGS=-mod=mod go run .            # one line per manifest
//	cd hack/lws-hash && GOFLAGS=-mod=mod go run . -patch       # also the ControllerRevision data
//	cd hack/lws-hash && GOFLAGS=-mod=mod go run . -stored      # also the object as both CRDs store it
//	cd hack/lws-hash && GOFLAGS=-mod=mod go run . -types       # Go JSON facts of the embedded types
//	cd hack/lws-hash && GOFLAGS=-mod=mod go run . -quantities  # how Go writes back some quantities
package main

import (
	"context"
	"embed"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path"
	"reflect"
	"sort"
	"strings"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	structuralpruning "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	lwsv1 "sigs.k8s.io/lws/api/leaderworkerset/v1"
	"sigs.k8s.io/lws/pkg/utils"
	"sigs.k8s.io/lws/pkg/utils/revision"
	"sigs.k8s.io/lws/pkg/webhooks"
	"sigs.k8s.io/yaml"
)

//go:embed testdata/*.json
var manifests embed.FS

func main() {
	showPatch := flag.Bool("patch", false, "also print the ControllerRevision data (the hashed bytes)")
	showTypes := flag.Bool("types", false, "print the Go JSON facts of the types a template embeds")
	showQuantities := flag.Bool("quantities", false, "print how Go writes back a few quantities")
	showStored := flag.Bool("stored", false, "also print each object as both CRDs store it")
	flag.Parse()
	if *showTypes {
		printTypes()
		return
	}
	if *showQuantities {
		printQuantities()
		return
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		fail(err)
	}
	if err := lwsv1.AddToScheme(scheme); err != nil {
		fail(err)
	}
	upstreamCRD := crdSchema(path.Join(moduleDir("sigs.k8s.io/lws"), crdFile))
	oursCRD := crdSchema(oursCRDFile)
	entries, err := manifests.ReadDir("testdata")
	if err != nil {
		fail(err)
	}
	for _, e := range entries {
		raw, err := manifests.ReadFile(path.Join("testdata", e.Name()))
		if err != nil {
			fail(err)
		}
		var notes []string
		if !same(raw, stored(raw, oursCRD)) {
			notes = append(notes, "this operator's CRD would change it: not what this operator stores")
		}
		upstreamStored := stored(raw, upstreamCRD)
		if *showStored {
			fmt.Printf("ours stores:     %s\nupstream stores: %s\n", stored(raw, oursCRD), upstreamStored)
		}
		if !same(raw, upstreamStored) {
			notes = append(notes, "upstream's CRD defaults change it")
		}
		lws := &lwsv1.LeaderWorkerSet{}
		if err := json.Unmarshal(upstreamStored, lws); err != nil {
			fail(fmt.Errorf("%s: %w", e.Name(), err))
		}
		defaulted := lws.DeepCopy()
		if err := (&webhooks.LeaderWorkerSetWebhook{}).Default(context.Background(), defaulted); err != nil {
			fail(err)
		}
		if !equality.Semantic.DeepEqual(defaulted, lws) {
			notes = append(notes, "upstream's defaulting webhook changes it")
		}
		c := fake.NewClientBuilder().WithScheme(scheme).Build()
		cr, err := revision.NewRevision(context.Background(), c, defaulted, "")
		if err != nil {
			fail(fmt.Errorf("%s: %w", e.Name(), err))
		}
		note := ""
		if len(notes) > 0 {
			note = "\t(" + strings.Join(notes, "; ") + ")"
		}
		fmt.Printf("%s\thash=%s\tname=%s%s\n", e.Name(), cr.Labels[lwsv1.RevisionKey], cr.Name, note)
		if *showPatch {
			fmt.Printf("%s\n", cr.Data.Raw)
		}
	}
	fmt.Printf("group-key(ns/test-1)\t%s\n", utils.Sha1Hash("ns/test-1"))
	fmt.Printf("subgroup-key(test-1/1)\t%s\n", utils.Sha1Hash("test-1/1"))
}

// quantities as they may appear in a stored template: strings, and JSON numbers (unquoted)
var quantities = []string{
	`"1000m"`, `"1024Mi"`, `"1.5Gi"`, `"0.5Gi"`, `"0.5"`, `"0.1"`, `"100m"`, `"64M"`, `"10Gi"`, `"1e3"`,
	`"1E3"`, `"1.5e3"`, `"2e-3"`, `"1Ki"`, `"1023Ki"`, `"1025Ki"`, `"1024"`, `"2048"`, `"1536Mi"`,
	`"0.0000000001"`, `"-0.0000000001"`, `"1.0000000001"`, `"-1.5Gi"`, `"+3k"`, `"0Gi"`, `"000"`, `"0.000"`,
	`"12000000000000000000000"`, `"1.G"`, `"7E"`, `"1000000000000000000000000000000n"`, `".5"`, `"3000u"`,
	`"1000k"`, `"123456789"`, `"100Mi"`, `"0.25Ki"`, `"1.25Ki"`, `"5e2"`,
	`1`, `2`, `1000`, `0.5`, `250`, `0`,
}

func printQuantities() {
	for _, q := range quantities {
		var parsed resource.Quantity
		if err := json.Unmarshal([]byte(q), &parsed); err != nil {
			fail(fmt.Errorf("%s: %w", q, err))
		}
		out, err := json.Marshal(parsed)
		if err != nil {
			fail(err)
		}
		fmt.Printf("%s\t%s\n", q, out)
	}
}

const (
	crdFile      = "config/crd/bases/leaderworkerset.x-k8s.io_leaderworkersets.yaml"
	oursCRDFile  = "../../config/crd/leaderworkerset.x-k8s.io_leaderworkersets.yaml"
	goModCommand = "go"
)

// moduleDir is where the go command keeps a module of the build.
func moduleDir(module string) string {
	out, err := exec.Command(goModCommand, "list", "-m", "-f", "{{.Dir}}", module).Output()
	if err != nil {
		fail(fmt.Errorf("go list -m %s: %w", module, err))
	}
	return strings.TrimSpace(string(out))
}

// crdSchema is the structural schema of the first version of a CustomResourceDefinition file.
func crdSchema(file string) *structuralschema.Structural {
	text, err := os.ReadFile(file)
	if err != nil {
		fail(err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.Unmarshal(text, crd); err != nil {
		fail(fmt.Errorf("%s: %w", file, err))
	}
	internal := &apiextensions.JSONSchemaProps{}
	v1schema := crd.Spec.Versions[0].Schema.OpenAPIV3Schema
	if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(v1schema, internal, nil); err != nil {
		fail(err)
	}
	s, err := structuralschema.NewStructural(internal)
	if err != nil {
		fail(fmt.Errorf("%s: %w", file, err))
	}
	return s
}

// stored is the object as an API server serving the CRD stores it: nulls without defaults dropped,
// defaults set, unknown fields pruned (as kube-apiserver's apiextensions handler does on a write).
func stored(raw []byte, s *structuralschema.Structural) []byte {
	var obj map[string]interface{}
	if err := json.Unmarshal(raw, &obj); err != nil {
		fail(err)
	}
	structuraldefaulting.PruneNonNullableNullsWithoutDefaults(obj, s)
	structuraldefaulting.Default(obj, s)
	structuralpruning.Prune(obj, s, true)
	out, err := json.Marshal(obj)
	if err != nil {
		fail(err)
	}
	return out
}

func same(a, b []byte) bool {
	var x, y interface{}
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	if m, ok := x.(map[string]interface{}); ok {
		delete(m, "//") // a fixture's comment, pruned by every CRD
	}
	return reflect.DeepEqual(x, y)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

// printTypes prints, for every struct type reachable from upstream's LeaderWorkerTemplate and
// NetworkConfig, the JSON fields whose encoding needs more than "drop a zero value, keep the rest"
// (tests/unit/leaderworker/test_lws_revision.py checks that rbg.leaderworker.desired holds this table):
//
//	name=KIND[*][!][~]   KIND: s string, b bool, i integer, Q Quantity, I IntOrString, T Time, a struct
//	                     type's name; [KIND a slice, {KIND a map; * a pointer, ! not omitempty, ~ omitzero
//
// A field left out is a non-pointer omitempty string, bool, integer, []string or map[string]string.
func printTypes() {
	seen := map[reflect.Type]bool{}
	var out []string
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] || special(t) != "" {
			return
		}
		seen[t] = true
		var fields []string
		var fieldsOf func(t reflect.Type)
		fieldsOf = func(t reflect.Type) {
			for i := 0; i < t.NumField(); i++ {
				f := t.Field(i)
				name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
				if name == "-" || !f.IsExported() {
					continue
				}
				if f.Anonymous && name == "" {
					fieldsOf(f.Type)
					continue
				}
				omitempty, omitzero := false, false
				for _, o := range strings.Split(opts, ",") {
					omitempty = omitempty || o == "omitempty"
					omitzero = omitzero || o == "omitzero"
				}
				ptr := f.Type.Kind() == reflect.Pointer
				k := kind(f.Type)
				if !ptr && omitempty && !omitzero && (len(k) == 1 && strings.Contains("sbi", k) || k == "[s" || k == "{s") {
					continue
				}
				flags := ""
				if ptr {
					flags += "*"
				}
				if !omitempty {
					flags += "!"
				}
				if omitzero {
					flags += "~"
				}
				fields = append(fields, name+"="+k+flags)
				walk(f.Type)
			}
		}
		fieldsOf(t)
		if len(fields) > 0 {
			out = append(out, t.Name()+": "+strings.Join(fields, " "))
		}
	}
	walk(reflect.TypeOf(lwsv1.LeaderWorkerTemplate{}))
	walk(reflect.TypeOf(lwsv1.NetworkConfig{}))
	sort.Strings(out)
	for _, line := range out {
		fmt.Println(line)
	}
}

func special(t reflect.Type) string {
	switch t.PkgPath() + "." + t.Name() {
	case "k8s.io/apimachinery/pkg/api/resource.Quantity":
		return "Q"
	case "k8s.io/apimachinery/pkg/apis/meta/v1.Time":
		return "T"
	case "k8s.io/apimachinery/pkg/util/intstr.IntOrString":
		return "I"
	}
	return ""
}

func kind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Pointer:
		return kind(t.Elem())
	case reflect.Slice:
		return "[" + kind(t.Elem())
	case reflect.Map:
		return "{" + kind(t.Elem())
	case reflect.Struct:
		if s := special(t); s != "" {
			return s
		}
		return t.Name()
	case reflect.String:
		return "s"
	case reflect.Bool:
		return "b"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "i"
	}
	return t.Kind().String()
}
