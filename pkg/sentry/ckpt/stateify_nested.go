package ckpt

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// stateNestedInt reads an integer reached from *obj through a path of saved fields, each a struct
// field (not a pointer) of the one before: acceptQueue.capacity of a tcp.Endpoint. Every step is
// checked against the StateFields of its struct (a fresh zero value of the step's type answers
// StateFields, since reflect cannot call methods through unexported fields), so a gVisor bump that
// renames one fails here and in TestStateNestedUsed instead of misreading state. Read-only, like
// stateField.
func stateNestedInt(obj stateifyObject, path ...string) (int64, error) {
	if len(path) == 0 {
		return 0, fmt.Errorf("stateNestedInt: empty path")
	}
	f, err := stateField(obj, path[0])
	if err != nil {
		return 0, err
	}
	name := obj.StateTypeName() + "." + path[0]
	for _, p := range path[1:] {
		if f.Kind() != reflect.Struct {
			return 0, fmt.Errorf("%s is a %s, want a struct (gVisor changed)", name, f.Kind())
		}
		so, ok := reflect.New(f.Type()).Interface().(stateifyObject)
		if !ok || !slices.Contains(so.StateFields(), p) {
			return 0, fmt.Errorf("%s has no saved field %q (gVisor changed: see docs/upstream-gaps.md)", name, p)
		}
		f = f.FieldByName(p)
		name += "." + p
		if !f.IsValid() {
			return 0, fmt.Errorf("%s lists %q in StateFields but has no such field", name, p)
		}
	}
	switch f.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return f.Int(), nil
	}
	return 0, fmt.Errorf("%s is a %s, want a signed integer (gVisor changed)", name, f.Kind())
}

// stateNestedUse is one path stateNestedInt reads, for TestStateNestedUsed.
type stateNestedUse struct {
	obj  stateifyObject
	path []string
}

func (u stateNestedUse) String() string {
	return u.obj.StateTypeName() + "." + strings.Join(u.path, ".")
}
