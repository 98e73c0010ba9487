package manifest

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode checks that no input makes Decode panic, and that what it
// returns is well formed: *Errors and objects on a line of the file.
func FuzzDecode(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("testdata", "seeds", "*.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range seeds {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n---\n~\n---\n- a\n---\napiVersion: apps/v1\nkind: Deployment\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, errs := Decode("f", data)
		for _, e := range errs {
			if e, ok := e.(*Error); !ok || e.Line < 1 {
				t.Errorf("error %#v: want an *Error on a line", e)
			}
		}
		for _, o := range objs {
			if o.Line < 1 || o.Obj != nil && o.Name == "" {
				t.Errorf("object %+v: want a line, and a name if decoded", o)
			}
		}
	})
}
