package ckpt

import (
	"fmt"
	"reflect"
	"slices"
)

// stateFieldOf is stateField for a struct reached through another saved field (a map value, a
// pointer, an interface): v must be a non-nil pointer of zero's type, and name one of zero's
// StateFields. Such a v is read-only (reflect marks everything reached through an unexported field
// so), so the field can be read, never written or called.
func stateFieldOf(v reflect.Value, zero stateifyObject, name string) (reflect.Value, error) {
	if !slices.Contains(zero.StateFields(), name) {
		return reflect.Value{}, fmt.Errorf("%s has no saved field %q (gVisor changed: see docs/upstream-gaps.md)", zero.StateTypeName(), name)
	}
	if v.Kind() == reflect.Interface {
		v = v.Elem()
	}
	if !v.IsValid() || v.Type() != reflect.TypeOf(zero) || v.IsNil() {
		return reflect.Value{}, fmt.Errorf("%s: not a non-nil %T", zero.StateTypeName(), zero)
	}
	f := v.Elem().FieldByName(name)
	if !f.IsValid() {
		return reflect.Value{}, fmt.Errorf("%s lists %q in StateFields but has no such field", zero.StateTypeName(), name)
	}
	return f, nil
}
