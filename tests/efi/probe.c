/*
 * VBIOS-PROBE: a tiny EFI application that makes firmware state observable from outside.
 *
 * Run by the boot manager (or the shell), it prints on ConOut, which OVMF mirrors to the
 * serial console:
 *
 *   VBIOS-PROBE v1 SecureBoot=<0|1|-> SetupMode=<0|1|-> BootCurrent=<XXXX|->
 *       BootOrder=<XXXX,XXXX,...|-> Cpus=<n|-> Attributes=<base64|toolong|->
 *   VBIOS-PROBE-END
 *
 * (one line, fields separated by single spaces), then returns EFI_ABORTED so that the boot
 * manager goes on to the next boot option. Built with Debian's gnu-efi by tests/efi_probe.py.
 */

#include <efi.h>
#include <efilib.h>

/* The global variables: 8be4df61-93ca-11d2-aa0d-00e098032b8c. */
static EFI_GUID global_guid = {
    0x8be4df61, 0x93ca, 0x11d2, {0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c}};
/* The vendor of VbiosAttributes: 7f3c4a52-1e0b-4c6e-9a53-0d0f2b1e5c11. */
static EFI_GUID vbios_guid = {
    0x7f3c4a52, 0x1e0b, 0x4c6e, {0x9a, 0x53, 0x0d, 0x0f, 0x2b, 0x1e, 0x5c, 0x11}};
/* EFI_MP_SERVICES_PROTOCOL (PI spec, volume 2): 3fdda605-a76e-4f46-ad29-12f4531b3d08.
 * gnu-efi does not define it; only its first member is used here. */
static EFI_GUID mp_services_guid = {
    0x3fdda605, 0xa76e, 0x4f46, {0xad, 0x29, 0x12, 0xf4, 0x53, 0x1b, 0x3d, 0x08}};

struct mp_services;
typedef EFI_STATUS(EFIAPI *mp_get_number_of_processors)(
    struct mp_services *self, UINTN *number_of_processors, UINTN *number_of_enabled);
struct mp_services {
    mp_get_number_of_processors GetNumberOfProcessors;
    /* GetProcessorInfo, StartupAllAPs, ... follow; not used. */
};

#define MAX_ATTRIBUTES 3072           /* bytes of VbiosAttributes printed, else "toolong" */
#define MAX_BOOT_ORDER 256            /* entries of BootOrder printed, else "toolong" */
#define LINE_CHARS 8192               /* the line buffer, CHAR16 units */

struct line {
    CHAR16 *text;
    UINTN used;
};

static void put_char(struct line *line, CHAR16 c) {
    if (line->used + 1 < LINE_CHARS) {
        line->text[line->used++] = c;
        line->text[line->used] = 0;
    }
}

static void put_ascii(struct line *line, const char *s) {
    while (*s) {
        put_char(line, (CHAR16)(unsigned char)*s++);
    }
}

static void put_hex16(struct line *line, UINT16 value) {
    static const char digits[] = "0123456789ABCDEF";
    for (int shift = 12; shift >= 0; shift -= 4) {
        put_char(line, (CHAR16)digits[(value >> shift) & 0xf]);
    }
}

static void put_decimal(struct line *line, UINTN value) {
    char reversed[24];
    int n = 0;
    do {
        reversed[n++] = (char)('0' + value % 10);
        value /= 10;
    } while (value != 0 && n < (int)sizeof(reversed));
    while (n > 0) {
        put_char(line, (CHAR16)reversed[--n]);
    }
}

static void put_base64(struct line *line, const UINT8 *data, UINTN size) {
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (UINTN i = 0; i < size; i += 3) {
        UINT32 chunk = (UINT32)data[i] << 16;
        if (i + 1 < size) {
            chunk |= (UINT32)data[i + 1] << 8;
        }
        if (i + 2 < size) {
            chunk |= data[i + 2];
        }
        put_char(line, (CHAR16)alphabet[(chunk >> 18) & 0x3f]);
        put_char(line, (CHAR16)alphabet[(chunk >> 12) & 0x3f]);
        put_char(line, i + 1 < size ? (CHAR16)alphabet[(chunk >> 6) & 0x3f] : L'=');
        put_char(line, i + 2 < size ? (CHAR16)alphabet[chunk & 0x3f] : L'=');
    }
}

/* Reads a variable into a fresh pool buffer: EFI_SUCCESS and *data (to free), EFI_NOT_FOUND,
 * or another error. */
static EFI_STATUS read_variable(CHAR16 *name, EFI_GUID *vendor, UINT8 **data, UINTN *size) {
    UINT32 attributes = 0;
    UINTN needed = 0;
    EFI_STATUS status;

    *data = NULL;
    *size = 0;
    status = uefi_call_wrapper(RT->GetVariable, 5, name, vendor, &attributes, &needed, NULL);
    if (status != EFI_BUFFER_TOO_SMALL) {
        return status;  /* EFI_NOT_FOUND, or EFI_SUCCESS for an empty value */
    }
    status = uefi_call_wrapper(BS->AllocatePool, 3, EfiLoaderData, needed, (VOID **)data);
    if (EFI_ERROR(status)) {
        *data = NULL;
        return status;
    }
    status = uefi_call_wrapper(RT->GetVariable, 5, name, vendor, &attributes, &needed, *data);
    if (EFI_ERROR(status)) {
        uefi_call_wrapper(BS->FreePool, 1, *data);
        *data = NULL;
        return status;
    }
    *size = needed;
    return EFI_SUCCESS;
}

/* A one-byte global variable as 0/1 (its value), or "-" when absent or malformed. */
static void put_flag(struct line *line, const char *label, CHAR16 *name) {
    UINT8 *data;
    UINTN size;
    put_ascii(line, label);
    if (read_variable(name, &global_guid, &data, &size) == EFI_SUCCESS && size == 1) {
        put_decimal(line, data[0]);
    } else {
        put_char(line, L'-');
    }
    if (data != NULL) {
        uefi_call_wrapper(BS->FreePool, 1, data);
    }
}

static void put_boot_current(struct line *line) {
    UINT8 *data;
    UINTN size;
    put_ascii(line, " BootCurrent=");
    if (read_variable(L"BootCurrent", &global_guid, &data, &size) == EFI_SUCCESS && size == 2) {
        put_hex16(line, (UINT16)(data[0] | (data[1] << 8)));
    } else {
        put_char(line, L'-');
    }
    if (data != NULL) {
        uefi_call_wrapper(BS->FreePool, 1, data);
    }
}

static void put_boot_order(struct line *line) {
    UINT8 *data;
    UINTN size;
    put_ascii(line, " BootOrder=");
    if (read_variable(L"BootOrder", &global_guid, &data, &size) != EFI_SUCCESS || size == 0 ||
        size % 2 != 0) {
        put_char(line, L'-');
    } else if (size / 2 > MAX_BOOT_ORDER) {
        put_ascii(line, "toolong");
    } else {
        for (UINTN i = 0; i < size; i += 2) {
            if (i != 0) {
                put_char(line, L',');
            }
            put_hex16(line, (UINT16)(data[i] | (data[i + 1] << 8)));
        }
    }
    if (data != NULL) {
        uefi_call_wrapper(BS->FreePool, 1, data);
    }
}

static void put_cpus(struct line *line) {
    struct mp_services *mp = NULL;
    UINTN total = 0;
    UINTN enabled = 0;
    EFI_STATUS status;
    put_ascii(line, " Cpus=");
    status = uefi_call_wrapper(BS->LocateProtocol, 3, &mp_services_guid, NULL, (VOID **)&mp);
    if (!EFI_ERROR(status) && mp != NULL) {
        status = uefi_call_wrapper(mp->GetNumberOfProcessors, 3, mp, &total, &enabled);
    }
    if (EFI_ERROR(status) || mp == NULL) {
        put_char(line, L'-');
    } else {
        put_decimal(line, enabled);
    }
}

static void put_attributes(struct line *line) {
    UINT32 attributes = 0;
    UINTN needed = 0;
    UINT8 *data;
    UINTN size;
    EFI_STATUS status;
    put_ascii(line, " Attributes=");
    /* Ask for the size first: a value over the limit is never read. */
    status = uefi_call_wrapper(RT->GetVariable, 5, L"VbiosAttributes", &vbios_guid, &attributes,
                               &needed, NULL);
    if (status == EFI_BUFFER_TOO_SMALL && needed > MAX_ATTRIBUTES) {
        put_ascii(line, "toolong");
        return;
    }
    if (read_variable(L"VbiosAttributes", &vbios_guid, &data, &size) != EFI_SUCCESS) {
        put_char(line, L'-');
    } else if (size > MAX_ATTRIBUTES) {
        put_ascii(line, "toolong");
    } else {
        put_base64(line, data, size);   /* an empty value prints as "Attributes=" */
    }
    if (data != NULL) {
        uefi_call_wrapper(BS->FreePool, 1, data);
    }
}

/* Called by gnu-efi's crt0-efi-x86_64.o after self-relocation, with the System V ABI
 * (arguments in rdi and rsi): not EFIAPI. */
EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *system_table) {
    struct line line = {NULL, 0};
    EFI_STATUS status;

    InitializeLib(image, system_table);
    status = uefi_call_wrapper(BS->AllocatePool, 3, EfiLoaderData, LINE_CHARS * sizeof(CHAR16),
                               (VOID **)&line.text);
    if (EFI_ERROR(status)) {
        return EFI_ABORTED;
    }
    line.text[0] = 0;
    put_ascii(&line, "\r\nVBIOS-PROBE v1");
    put_flag(&line, " SecureBoot=", L"SecureBoot");
    put_flag(&line, " SetupMode=", L"SetupMode");
    put_boot_current(&line);
    put_boot_order(&line);
    put_cpus(&line);
    put_attributes(&line);
    put_ascii(&line, "\r\nVBIOS-PROBE-END\r\n");
    uefi_call_wrapper(ST->ConOut->OutputString, 2, ST->ConOut, line.text);
    uefi_call_wrapper(BS->FreePool, 1, line.text);
    return EFI_ABORTED;
}
