package main

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/windows"
)

// roots adds (trust) or removes (distrust) the DER certificate in file to
// or from the current user's trusted root store, for the tests of opx's
// Authenticode check (require_signed) with a certificate made for them.
func roots(op, file string) {
	der, err := os.ReadFile(file)
	if err == nil {
		err = changeRoots(op == "trust", der)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func changeRoots(add bool, der []byte) error {
	name, _ := windows.UTF16PtrFromString("Root")
	store, err := windows.CertOpenStore(windows.CERT_STORE_PROV_SYSTEM, 0, 0, windows.CERT_SYSTEM_STORE_CURRENT_USER, uintptr(unsafe.Pointer(name)))
	if err != nil {
		return fmt.Errorf("open the Root store: %w", err)
	}
	defer windows.CertCloseStore(store, 0)
	cert, err := windows.CertCreateCertificateContext(windows.X509_ASN_ENCODING|windows.PKCS_7_ASN_ENCODING, &der[0], uint32(len(der)))
	if err != nil {
		return fmt.Errorf("parse the certificate: %w", err)
	}
	defer windows.CertFreeCertificateContext(cert)
	if add {
		return windows.CertAddCertificateContextToStore(store, cert, windows.CERT_STORE_ADD_REPLACE_EXISTING, nil)
	}
	found, err := windows.CertFindCertificateInStore(store, windows.X509_ASN_ENCODING|windows.PKCS_7_ASN_ENCODING, 0, windows.CERT_FIND_EXISTING, unsafe.Pointer(cert), nil)
	if err != nil {
		return fmt.Errorf("find the certificate: %w", err)
	}
	return windows.CertDeleteCertificateFromStore(found)
}
