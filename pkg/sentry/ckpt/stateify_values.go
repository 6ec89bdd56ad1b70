package ckpt

import (
	"fmt"
	"reflect"
	"slices"
)

// stateFieldOf is stateField for a struct reached through another saved field (a map value, a
// pointer, an interface, a struct field): v must be a non-nil pointer of zero's type or a struct
// of the type zero points to, and name one of zero's StateFields. Such a v is read-only (reflect marks everything reached through an unexported field
// so), so the field can be read, never written or called.
func stateFieldOf(v reflect.Value, zero stateifyObject, name string) (reflect.Value, error) {
	if !slices.Contains(zero.StateFields(), name) {
		return reflect.Value{}, fmt.Errorf("%s has no saved field %q (gVisor changed: see docs/upstream-gaps.md)", zero.StateTypeName(), name)
	}
	if v.Kind() == reflect.Interface {
		v = v.Elem()
	}
	if v.IsValid() && v.Type() == reflect.TypeOf(zero).Elem() {
		v = v.Addr()
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

// stateZeroOfField returns a new zero value of the type of obj's field name (a pointer to it),
// for checking fields of unexported gVisor types (stateFieldsUsed). It panics if the field does
// not exist or its type is not stateify-savable: TestStateFieldsUsed then fails.
func stateZeroOfField(obj stateifyObject, name string) stateifyObject {
	f, ok := reflect.TypeOf(obj).Elem().FieldByName(name)
	if !ok {
		panic(fmt.Sprintf("%s has no field %q (gVisor changed)", obj.StateTypeName(), name))
	}
	typ := f.Type
	if typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	return reflect.New(typ).Interface().(stateifyObject)
}
