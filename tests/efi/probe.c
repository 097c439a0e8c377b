/*
 * VBIOS-PROBE: a tiny EFI application that makes firmware state observable from outside.
 *
 * Run by the boot manager (or the shell), it prints on ConOut, which OVMF mirrors to the
 * serial console:
 *
 *   VBIOS-PROBE v1 SecureBoot=<0|1|-> SetupMode=<0|1|-> BootCurrent=<XXXX|->
 *       BootOrder=<XXXX,XXXX,...|-> Cpus=<n|-> Attributes=<base64|toolong|->
 *       BiosVersion=<text|-> SysManufacturer=<text|-> SysProduct=<text|->
 *       SysSerial=<text|-> SysUuid=<uuid|->
 *   VBIOS-PROBE-END
 *
 * (one line, fields separated by single spaces), then returns EFI_ABORTED so that the boot
 * manager goes on to the next boot option. Built with Debian's gnu-efi by tests/efi_probe.py.
 *
 * BiosVersion is the BIOS Version string of the SMBIOS type 0 structure (the SMBIOS 3.0
 * entry point's table, else the 2.1 one's), at most 64 characters, each byte outside
 * printable ASCII or a space shown as '?'; "-" when there is none. SysManufacturer,
 * SysProduct and SysSerial are the type 1 (System Information) strings the same way, and
 * SysUuid its UUID as dmidecode prints it for SMBIOS 2.6 and later (the first three fields
 * little-endian), lower case; "-" when there is no type 1 structure.
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

/* The SMBIOS entry points in the configuration table: 3.0 (64-bit)
 * f2fd1544-9794-4a2c-992e-e5bbcf20e394, and 2.1 eb9d2d31-2d88-11d3-9a16-0090273fc14d. */
static EFI_GUID smbios3_guid = {
    0xf2fd1544, 0x9794, 0x4a2c, {0x99, 0x2e, 0xe5, 0xbb, 0xcf, 0x20, 0xe3, 0x94}};
static EFI_GUID smbios_guid = {
    0xeb9d2d31, 0x2d88, 0x11d3, {0x9a, 0x16, 0x00, 0x90, 0x27, 0x3f, 0xc1, 0x4d}};

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
#define MAX_BIOS_VERSION 64           /* characters of the BIOS version printed */
#define SMBIOS_TYPE_BIOS 0
#define SMBIOS_TYPE_SYSTEM 1
#define SMBIOS_TYPE_END 127
#define SMBIOS_BIOS_VERSION 5         /* type 0: the offset of the version's string number */
#define SMBIOS_SYSTEM_MANUFACTURER 4  /* type 1: the offsets of its string numbers ... */
#define SMBIOS_SYSTEM_PRODUCT 5
#define SMBIOS_SYSTEM_SERIAL 7
#define SMBIOS_SYSTEM_UUID 8          /* ... and of its 16-byte UUID */

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

static int same_bytes(const void *a, const void *b, UINTN size) {
    const UINT8 *x = a;
    const UINT8 *y = b;
    for (UINTN i = 0; i < size; i++) {
        if (x[i] != y[i]) {
            return 0;
        }
    }
    return 1;
}

static UINT64 little_endian(const UINT8 *data, UINTN size) {
    UINT64 value = 0;
    for (UINTN i = size; i > 0; i--) {
        value = (value << 8) | data[i - 1];
    }
    return value;
}

static const UINT8 *configuration_table(EFI_GUID *guid) {
    for (UINTN i = 0; i < ST->NumberOfTableEntries; i++) {
        if (same_bytes(&ST->ConfigurationTable[i].VendorGuid, guid, sizeof(EFI_GUID))) {
            return ST->ConfigurationTable[i].VendorTable;
        }
    }
    return NULL;
}

/* The SMBIOS structure table and its (maximum) size: the 3.0 entry point's, else the 2.1
 * one's; NULL when the firmware publishes neither. */
static const UINT8 *smbios_table(UINTN *size) {
    const UINT8 *entry = configuration_table(&smbios3_guid);
    if (entry != NULL && same_bytes(entry, "_SM3_", 5)) {
        *size = (UINTN)little_endian(entry + 0x0C, 4);
        return (const UINT8 *)(UINTN)little_endian(entry + 0x10, 8);
    }
    entry = configuration_table(&smbios_guid);
    if (entry != NULL && same_bytes(entry, "_SM_", 4)) {
        *size = (UINTN)little_endian(entry + 0x16, 2);
        return (const UINT8 *)(UINTN)little_endian(entry + 0x18, 4);
    }
    *size = 0;
    return NULL;
}

/* String number `number` (from 1) of the string set at `strings`, NULL if it has none. */
static const UINT8 *smbios_string(const UINT8 *strings, const UINT8 *end, UINT8 number) {
    const UINT8 *s = strings;
    if (number == 0) {
        return NULL;
    }
    for (UINT8 n = 1; n < number; n++) {
        if (s >= end || *s == 0) {
            return NULL;  /* the set ended first */
        }
        while (s < end && *s != 0) {
            s++;
        }
        s++;
    }
    return s < end && *s != 0 ? s : NULL;
}

/* The first structure of `type` (its formatted area is at least `min_length` bytes), NULL if
 * there is none; *end_out is the end of the table. */
static const UINT8 *smbios_structure(UINT8 wanted, UINT8 min_length, const UINT8 **end_out) {
    UINTN size = 0;
    const UINT8 *p = smbios_table(&size);
    const UINT8 *end;
    if (p == NULL || size == 0) {
        return NULL;
    }
    end = p + size;
    *end_out = end;
    while (p + 4 <= end) {
        UINT8 type = p[0];
        UINT8 length = p[1];
        const UINT8 *q;
        if (length < 4 || p + length > end) {
            return NULL;  /* malformed */
        }
        if (type == wanted) {
            return length >= min_length ? p : NULL;
        }
        if (type == SMBIOS_TYPE_END) {
            return NULL;
        }
        q = p + length;  /* the string set ends with two NULs */
        while (q + 1 < end && !(q[0] == 0 && q[1] == 0)) {
            q++;
        }
        p = q + 2;
    }
    return NULL;
}

/* " <label>" and string number structure[offset] of `structure`, or "-". */
static void put_smbios_string(struct line *line, const char *label, const UINT8 *structure,
                              UINT8 offset, const UINT8 *end) {
    const UINT8 *text = NULL;
    put_ascii(line, label);
    if (structure != NULL && offset < structure[1]) {
        text = smbios_string(structure + structure[1], end, structure[offset]);
    }
    if (text == NULL) {
        put_char(line, L'-');
        return;
    }
    for (UINTN i = 0; i < MAX_BIOS_VERSION && text + i < end && text[i] != 0; i++) {
        UINT8 c = text[i];
        put_char(line, c > 0x20 && c < 0x7f ? (CHAR16)c : L'?');
    }
}

static void put_hex8(struct line *line, UINT8 value) {
    static const char digits[] = "0123456789abcdef";
    put_char(line, (CHAR16)digits[value >> 4]);
    put_char(line, (CHAR16)digits[value & 0xf]);
}

static void put_smbios(struct line *line) {
    const UINT8 *end = NULL;
    const UINT8 *bios = smbios_structure(SMBIOS_TYPE_BIOS, SMBIOS_BIOS_VERSION + 1, &end);
    const UINT8 *system = smbios_structure(SMBIOS_TYPE_SYSTEM, SMBIOS_SYSTEM_UUID + 16, &end);
    /* the first three UUID fields are little-endian: bytes in this order print it */
    static const UINT8 order[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
    put_smbios_string(line, " BiosVersion=", bios, SMBIOS_BIOS_VERSION, end);
    put_smbios_string(line, " SysManufacturer=", system, SMBIOS_SYSTEM_MANUFACTURER, end);
    put_smbios_string(line, " SysProduct=", system, SMBIOS_SYSTEM_PRODUCT, end);
    put_smbios_string(line, " SysSerial=", system, SMBIOS_SYSTEM_SERIAL, end);
    put_ascii(line, " SysUuid=");
    if (system == NULL) {
        put_char(line, L'-');
        return;
    }
    for (UINTN i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            put_char(line, L'-');
        }
        put_hex8(line, system[SMBIOS_SYSTEM_UUID + order[i]]);
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
    put_smbios(&line);
    put_ascii(&line, "\r\nVBIOS-PROBE-END\r\n");
    uefi_call_wrapper(ST->ConOut->OutputString, 2, ST->ConOut, line.text);
    uefi_call_wrapper(BS->FreePool, 1, line.text);
    return EFI_ABORTED;
}
