package repocheck

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// maxPhasesSurface bounds package phases' exported surface: the lifecycle
// alone, small enough to read in one sitting (docs/writing-plugins.md).
const maxPhasesSurface = 59

// exportedSurface lists the exported names of the package in dir: its
// top-level names, and the exported methods of its exported types
// (interface methods and test files excluded).
func exportedSurface(t *testing.T, dir string) []string {
	t.Helper()
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if !d.Name.IsExported() {
					continue
				}
				if d.Recv == nil {
					names = append(names, d.Name.Name)
					continue
				}
				if recv := receiverType(d.Recv.List[0].Type); ast.IsExported(recv) {
					names = append(names, recv+"."+d.Name.Name)
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						if s.Name.IsExported() {
							names = append(names, s.Name.Name)
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if n.IsExported() {
								names = append(names, n.Name)
							}
						}
					}
				}
			}
		}
	}
	sort.Strings(names)
	return names
}

// receiverType is the name of a method's receiver type, without pointer or
// type parameters.
func receiverType(e ast.Expr) string {
	for {
		switch x := e.(type) {
		case *ast.StarExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.IndexListExpr:
			e = x.X
		case *ast.Ident:
			return x.Name
		default:
			return ""
		}
	}
}

func TestPhasesSurfaceIsSmall(t *testing.T) {
	names := exportedSurface(t, filepath.Join(moduleRoot, "phases"))
	if len(names) > maxPhasesSurface {
		t.Errorf("package phases exports %d names, at most %d allowed:\n%s", len(names), maxPhasesSurface, strings.Join(names, "\n"))
	}
}

func TestSurfaceCounter(t *testing.T) {
	dir := t.TempDir()
	src := `package p
type T struct{ F int }
func (T) M() {}
func (*T) n() {}
type I interface{ IM() }
type g[X any] struct{}
func (g[X]) G() {}
type G2[X any] struct{}
func (*G2[X]) H() {}
var A, b = 1, 2
const C = 3
func F() {}
`
	if err := os.WriteFile(filepath.Join(dir, "p.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "p_test.go"), []byte("package p\nfunc Exported() {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(exportedSurface(t, dir), " ")
	want := "A C F G2 G2.H I T T.M"
	if got != want {
		t.Errorf("surface = %q, want %q", got, want)
	}
}
