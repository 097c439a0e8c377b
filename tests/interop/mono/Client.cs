// The Mono interop client: calls every guest operation of the vBIOS service (and the
// admin's GetDomainPowerState, AddSecureBootCertificate and RemoveSecureBootCertificate)
// through the proxy `wsdl` generated from wsdl/vbios.wsdl (VbiosService, a
// System.Web.Services SoapHttpClientProtocol), over mutual TLS.
//
// As the guest it also uploads a signed firmware capsule in chunks and commits it (OnReset).
// Prints "CALLED <Operation>" after each answered call and "VALUE <key> <value>" lines
// that tests/interop/test_mono.py compares with what the Python library reads.
// With --probe it makes one GetAttributes call and prints "PROBE ok" or
// "PROBE refused <error>" (the test runs it with a foreign CA: it must be refused).
using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Web.Services.Protocols;
using System.Xml;
using Mono.Security.Interface;

static class Client
{
    const string Ns = "urn:bios-ws:vbios:v1";
    static X509Certificate2 trustedCa;

    static int Main(string[] args)
    {
        var opt = ParseOptions(args);
        trustedCa = new X509Certificate2(opt["ca"]);
        TrustOnly(trustedCa);
        var guest = Service(opt["url"], opt["guest-p12"], opt["p12-password"]);
        if (opt.ContainsKey("probe"))
            return Probe(guest);
        var admin = Service(opt["url"], opt["admin-p12"], opt["p12-password"]);
        var domain = opt["domain"];
        Attributes(guest);
        Power(guest, admin, domain, int.Parse(opt["events-expires-in"]),
              int.Parse(opt["events-renew-in"]), int.Parse(opt["events-wait"]));
        Boot(guest);
        SecureBoot(guest, admin, domain, opt["secure-boot-cert"]);
        Attestation(guest, ParseHex(opt["nonce"]));
        Firmware(guest, opt["capsule"], long.Parse(opt["chunk-size"]));
        SystemManagement(guest, int.Parse(opt["watchdog-seconds"]));
        Credential(guest, File.ReadAllBytes(opt["csr"]));
        return 0;
    }

    // -- mutual TLS ----------------------------------------------------------------

    // Mono's own X509Chain cannot build a chain of EC certificates (NotSupportedException
    // "Cannot decode public key from unknown OID '1.2.840.10045.2.1'"), so the chain is
    // verified by the TLS stack (BoringSSL, btls) with the bundle's CA as its only trust
    // anchor (MonoTlsSettings.TrustAnchors replaces the system roots); the callback
    // accepts only a chain btls found valid for the host, ending at exactly that CA.
    static void TrustOnly(X509Certificate2 ca)
    {
        ServicePointManager.SecurityProtocol = SecurityProtocolType.Tls12;
        var settings = MonoTlsSettings.CopyDefaultSettings();
        settings.TrustAnchors = new X509CertificateCollection { ca };
        MonoTlsSettings.DefaultSettings = settings;
        ServicePointManager.ServerCertificateValidationCallback = ServerCertificateIsTrusted;
    }

    static bool ServerCertificateIsTrusted(object sender, X509Certificate certificate,
                                           X509Chain chain, SslPolicyErrors errors)
    {
        if (errors != SslPolicyErrors.None || chain == null || chain.ChainElements.Count < 2)
            return false;
        var root = chain.ChainElements[chain.ChainElements.Count - 1].Certificate;
        return root.RawData.SequenceEqual(trustedCa.RawData);
    }

    // Kept-alive connections are pooled per host and connection group, whatever the
    // client certificate: each identity gets its own group (as in .NET Framework), else
    // the admin's calls would go out on the guest's TLS connection.
    static VbiosService Service(string url, string p12, string password)
    {
        var service = new VbiosService { Url = url, Timeout = 30000, ConnectionGroupName = p12 };
        service.ClientCertificates.Add(new X509Certificate2(p12, password));
        return service;
    }

    static int Probe(VbiosService guest)
    {
        try
        {
            guest.GetAttributes(new GetAttributes());
            Console.WriteLine("PROBE ok");
            return 0;
        }
        catch (WebException refused)
        {
            Console.WriteLine("PROBE refused " + refused.Status + ": " + refused.Message);
            return 3;
        }
    }

    // -- attributes ----------------------------------------------------------------

    static long version;

    static void Attributes(VbiosService bios)
    {
        var registry = bios.GetAttributeRegistry(new GetAttributeRegistry());
        Called("GetAttributeRegistry");
        Value("registry.version", registry.RegistryVersion);
        Value("registry.count", registry.Attributes.Length);
        var bootTimeout = registry.Attributes.Single(a => a.Name == "BootTimeout");
        Value("registry.BootTimeout.type", bootTimeout.Type);
        Value("registry.BootTimeout.default", bootTimeout.Default.IntegerValue);

        var start = bios.GetAttributes(new GetAttributes());
        Called("GetAttributes");
        Value("attributes.start.version", start.Version);
        version = Written(bios.SetAttributes(new SetAttributes {
            Attributes = new[] { Integer("BootTimeout", 10), Boolean("NumLock", false) },
            ApplyTime = ApplyTime.Immediate, ExpectedVersion = start.Version,
            ExpectedVersionSpecified = true }).Version, "SetAttributes");
        var named = bios.GetAttributes(new GetAttributes { Names = new[] { "BootTimeout", "NumLock" } });
        Value("attributes.named", string.Join(",", named.Attributes.Select(Show)));

        try
        {
            bios.SetAttributes(new SetAttributes {
                Attributes = new[] { Boolean("NumLock", true) }, ApplyTime = ApplyTime.Immediate,
                ExpectedVersion = start.Version, ExpectedVersionSpecified = true });
            Value("fault.code", "none");
        }
        catch (SoapException fault)
        {
            Value("fault.type", fault.GetType().FullName);
            Value("fault.faultcode", fault.Code.Name);
            Value("fault.code", DetailText(fault.Detail, "Code"));
            Value("fault.message", DetailText(fault.Detail, "Message"));
        }

        version = Written(bios.SetAttributes(new SetAttributes {
            Attributes = new[] { Text("BootMode", "Bios") }, ApplyTime = ApplyTime.OnReset,
            ExpectedVersion = version, ExpectedVersionSpecified = true }).Version, "SetAttributes");
        var pending = bios.GetPendingAttributes(new GetPendingAttributes());
        Called("GetPendingAttributes");
        Value("pending.after-set", string.Join(",", pending.Attributes.Select(Show)));
        version = Written(bios.ResetAttributesToDefaults(new ResetAttributesToDefaults {
            ExpectedVersion = version, ExpectedVersionSpecified = true }).Version,
            "ResetAttributesToDefaults");
        var defaults = bios.GetPendingAttributes(new GetPendingAttributes());
        Value("pending.defaults.BootTimeout",
              defaults.Attributes.Single(a => a.Name == "BootTimeout").IntegerValue);
        version = Written(bios.CancelPendingAttributes(new CancelPendingAttributes {
            ExpectedVersion = version, ExpectedVersionSpecified = true }).Version,
            "CancelPendingAttributes");
        Value("pending.after-cancel",
              bios.GetPendingAttributes(new GetPendingAttributes()).Attributes.Length);

        version = Written(bios.ChangePassword(new ChangePassword {
            PasswordName = "SetupPassword", NewPassword = "mono-setup-pw",
            ExpectedVersion = version, ExpectedVersionSpecified = true }).Version, "ChangePassword");
        Value("password.set", Flag(bios.GetAttributes(new GetAttributes()).SetupPasswordSet));
        version = Written(bios.ChangePassword(new ChangePassword {
            PasswordName = "SetupPassword", OldPassword = "mono-setup-pw", NewPassword = "",
            ExpectedVersion = version, ExpectedVersionSpecified = true }).Version, "ChangePassword");
        Value("password.cleared", Flag(!bios.GetAttributes(new GetAttributes()).SetupPasswordSet));
    }

    // -- boot ----------------------------------------------------------------------

    static void Boot(VbiosService bios)
    {
        var boot = bios.GetBootOrder(new GetBootOrder());
        Called("GetBootOrder");
        var order = boot.Order.Reverse().ToArray();
        version = Written(bios.SetBootOrder(new SetBootOrder {
            Order = order, ExpectedVersion = version, ExpectedVersionSpecified = true }).Version,
            "SetBootOrder");
        version = Written(bios.SetBootNext(new SetBootNext {
            BootNext = order[0], ExpectedVersion = version, ExpectedVersionSpecified = true }).Version,
            "SetBootNext");
        var after = bios.GetBootOrder(new GetBootOrder());
        Value("boot.order", string.Join(",", after.Order));
        Value("boot.next", after.BootNext);
        Value("boot.version", after.Version);
    }

    // -- power ---------------------------------------------------------------------

    static void Power(VbiosService bios, VbiosService admin, string domain, int expiresIn,
                      int renewIn, int wait)
    {
        var before = bios.GetPowerState(new GetPowerState());
        Called("GetPowerState");
        Value("power.before", before.PowerState);
        // events: subscribed (every type: EventTypes null) before the Reset, read after it;
        // ExpiresIn is optional: without ExpiresInSpecified the proxy leaves it out
        var subscribed = bios.Subscribe(new Subscribe {
            ExpiresIn = expiresIn, ExpiresInSpecified = true });
        Called("Subscribe");
        var outcome = bios.Reset(new Reset { ResetType = ResetType.On });
        Called("Reset");
        Value("power.reset", outcome.PowerState);
        Value("power.reset.pending", Flag(outcome.PendingChanges));
        version = bios.GetAttributes(new GetAttributes()).Version;  // a boot applies settings
        var domainState = admin.GetDomainPowerState(new GetDomainPowerState { Domain = domain });
        Called("GetDomainPowerState");
        Value("power.admin.state", domainState.PowerState);
        Value("power.admin.machine", domainState.Machine);
        Events(bios, subscribed, renewIn, wait);
    }

    // -- events --------------------------------------------------------------------

    static void Events(VbiosService bios, SubscribeResponse subscribed, int renewIn, int wait)
    {
        var read = bios.GetEvents(new GetEvents {
            SubscriptionId = subscribed.SubscriptionId,
            Cursor = subscribed.Cursor, CursorSpecified = true,  // optional: Specified flags
            Wait = wait, WaitSpecified = true });
        Called("GetEvents");
        var events = read.Events ?? new Event[0];  // an empty list may come back as null
        Value("events.subscription_id", subscribed.SubscriptionId);
        Value("events.cursor", subscribed.Cursor.ToString(CultureInfo.InvariantCulture));
        Value("events.expires", subscribed.Expires);
        Value("events.event_ids", string.Join(",", events.Select(
            e => e.EventId.ToString(CultureInfo.InvariantCulture))));
        Value("events.event_types", string.Join(",", events.Select(e => e.EventType.ToString())));
        Value("events.event_domains", string.Join(",", events.Select(e => e.Domain ?? "")));
        Value("events.next_cursor", read.NextCursor.ToString(CultureInfo.InvariantCulture));
        Value("events.events_lost", Flag(read.EventsLost));
        var renewed = bios.Renew(new Renew { SubscriptionId = subscribed.SubscriptionId,
            ExpiresIn = renewIn, ExpiresInSpecified = true });
        Called("Renew");
        Value("events.renewed_expires", renewed.Expires);
        var ended = bios.Unsubscribe(new Unsubscribe { SubscriptionId = subscribed.SubscriptionId });
        Called("Unsubscribe");
        Value("events.unsubscribed", ended.SubscriptionId);
    }

    // -- Secure Boot ---------------------------------------------------------------

    static void SecureBoot(VbiosService bios, VbiosService admin, string domain, string pemPath)
    {
        var state = bios.GetSecureBoot(new GetSecureBoot());
        Called("GetSecureBoot");
        Value("secureboot.enabled", Flag(state.Enabled));
        version = Written(bios.SetSecureBoot(new SetSecureBoot {
            Enabled = !state.Enabled, ExpectedVersion = version, ExpectedVersionSpecified = true
            }).Version, "SetSecureBoot");
        var pending = bios.GetSecureBoot(new GetSecureBoot());
        Value("secureboot.pending", pending.PendingEnabledSpecified ? Flag(pending.PendingEnabled) : "none");
        version = Written(bios.ResetSecureBootKeys(new ResetSecureBootKeys {
            ResetKeysType = ResetKeysType.ResetAllKeysToDefault, ExpectedVersion = version,
            ExpectedVersionSpecified = true }).Version, "ResetSecureBootKeys");

        var pem = File.ReadAllText(pemPath);
        var sha256 = Hex(SHA256.Create().ComputeHash(new X509Certificate2(pemPath).RawData));
        version = Written(admin.AddSecureBootCertificate(new AddSecureBootCertificate {
            Domain = domain, Database = SecureBootDatabaseName.db, Certificate = pem }).Version,
            "AddSecureBootCertificate");
        var withCert = DbHashes(bios);
        Called("GetSecureBootDatabases");
        Value("secureboot.added.listed", Flag(withCert.Contains(sha256)));
        version = Written(admin.RemoveSecureBootCertificate(new RemoveSecureBootCertificate {
            Domain = domain, Database = SecureBootDatabaseName.db, Sha256 = sha256 }).Version,
            "RemoveSecureBootCertificate");
        var without = DbHashes(bios);
        Value("secureboot.removed.listed", Flag(without.Contains(sha256)));
        Value("secureboot.db", string.Join(",", without.OrderBy(h => h, StringComparer.Ordinal)));
    }

    static List<string> DbHashes(VbiosService bios)
    {
        var databases = bios.GetSecureBootDatabases(new GetSecureBootDatabases()).Databases;
        var db = databases.Single(d => d.Name == SecureBootDatabaseName.db);
        return (db.Certificates ?? new SecureBootCertificate[0]).Select(c => c.Sha256).ToList();
    }

    // -- attestation ---------------------------------------------------------------

    static void Attestation(VbiosService bios, byte[] nonce)
    {
        var measured = bios.GetBootMeasurements(new GetBootMeasurements { Bank = "sha256" });
        Called("GetBootMeasurements");
        Value("measurements.bank", measured.Bank);
        Value("measurements.pcrs", Pcrs(measured.Pcrs));
        Value("measurements.events", measured.Events.Length);

        var quote = bios.GetQuote(new GetQuote {
            Nonce = nonce, Bank = "sha256", PcrSelection = Enumerable.Range(0, 8).ToArray() });
        Called("GetQuote");
        Value("quote.bank", quote.Bank);
        Value("quote.pcrs", Pcrs(quote.Pcrs));
        Value("quote.attest", Convert.ToBase64String(quote.Attest));
        Value("quote.signature", Convert.ToBase64String(quote.Signature));
        Value("quote.ak", Convert.ToBase64String(quote.AkCertificate));
        Value("quote.eventlog", Convert.ToBase64String(quote.EventLog));

        var integrity = bios.GetIntegrityStatus(new GetIntegrityStatus()).Status;
        Called("GetIntegrityStatus");
        Value("integrity.state", integrity.State);
        Value("integrity.bank", integrity.Bank);
        var reference = bios.GetReferenceMeasurements(new GetReferenceMeasurements());
        Called("GetReferenceMeasurements");
        Value("reference.version", reference.VersionSpecified ? reference.Version.ToString() : "none");
        var diagnostics = bios.CollectDiagnostics(new CollectDiagnostics());
        Called("CollectDiagnostics");
        Value("diagnostics.state", diagnostics.Status.State);
        Value("diagnostics.audit", diagnostics.AuditEntries.Length);
    }

    // -- firmware update (after the reset: the job waits for the next one) ---------

    static void Firmware(VbiosService bios, string capsulePath, long chunkSize)
    {
        var entry = bios.GetFirmwareInventory(new GetFirmwareInventory()).Firmware.Single();
        Called("GetFirmwareInventory");
        Value("firmware.fw_version", entry.FwVersion);
        Value("firmware.active_slot", entry.ActiveSlot);

        var capsule = File.ReadAllBytes(capsulePath);
        var upload = bios.BeginFirmwareUpload(new BeginFirmwareUpload {
            Size = capsule.Length, Sha256 = Sha256(capsule) });
        Called("BeginFirmwareUpload");
        var size = Math.Min(chunkSize, upload.MaxChunkSize);
        var offset = upload.NextOffset;
        var chunks = 0;
        while (offset < capsule.Length)  // each chunk starts where the server says
        {
            var chunk = new byte[Math.Min(size, capsule.Length - offset)];
            Array.Copy(capsule, offset, chunk, 0, chunk.Length);
            var next = bios.UploadFirmwareChunk(new UploadFirmwareChunk {
                UploadId = upload.UploadId, Offset = offset, Data = chunk,
                Sha256 = Sha256(chunk) }).NextOffset;
            Called("UploadFirmwareChunk");
            if (next <= offset)
                throw new InvalidOperationException("the upload did not move past offset " + offset);
            offset = next;
            chunks++;
        }
        Value("firmware.chunks", chunks);
        var status = bios.GetFirmwareUpload(new GetFirmwareUpload { UploadId = upload.UploadId });
        Called("GetFirmwareUpload");
        Value("firmware.next_offset", status.NextOffset);

        // ApplyTime is optional: without ApplyTimeSpecified the proxy leaves it out
        var job = bios.CommitFirmwareUpload(new CommitFirmwareUpload {
            UploadId = upload.UploadId, ApplyTime = ApplyTime.OnReset,
            ApplyTimeSpecified = true }).Job;
        Called("CommitFirmwareUpload");
        Value("firmware.job_id", job.JobId);
        Value("firmware.state", job.State);
        Value("firmware.slot", job.SlotSpecified ? job.Slot.ToString() : "none");
        Value("firmware.monotonic_count",  // xs:unsignedLong: ulong
              job.MonotonicCountSpecified ? job.MonotonicCount.ToString() : "none");
        var read = bios.GetFirmwareJob(new GetFirmwareJob { JobId = job.JobId }).Job;
        Called("GetFirmwareJob");
        Value("firmware.job_state", read.State);
        var history = bios.GetFirmwareHistory(new GetFirmwareHistory()).Jobs ?? new FirmwareJob[0];
        Called("GetFirmwareHistory");
        Value("firmware.history", string.Join(",", history.Select(j => j.JobId)));
    }

    // -- system management and thermal (after the reset: the log holds its power entries)

    static void SystemManagement(VbiosService bios, int watchdogSeconds)
    {
        var smbios = bios.GetSmbios(new GetSmbios());
        Called("GetSmbios");
        Value("system.bios_vendor", smbios.Bios.Vendor);
        Value("system.bios_version", smbios.Bios.Version);
        Value("system.system_serial", smbios.System.SerialNumber);
        Value("system.system_uuid", smbios.System.Uuid);

        var thermal = bios.GetThermal(new GetThermal());
        Called("GetThermal");
        var cpu = thermal.Temperatures.Single(sensor => sensor.PhysicalContext == "CPU");
        // xs:double: a double, printed round-trip in the invariant culture (not "34,87")
        Value("system.cpu_reading", cpu.Reading.ToString("R", CultureInfo.InvariantCulture));
        Value("system.cpu_upper_critical",
              cpu.Thresholds.UpperCritical.Reading.ToString("R", CultureInfo.InvariantCulture));

        // RFC 3339 in UTC, whole seconds (WakeTime is an xs:string in the WSDL)
        var wake = DateTime.UtcNow.AddMinutes(10).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'",
                                                            CultureInfo.InvariantCulture);
        bios.SetWakeAlarm(new SetWakeAlarm { WakeTime = wake });
        Called("SetWakeAlarm");
        Value("system.wake_set", wake);
        Value("system.wake_read", bios.GetWakeAlarm(new GetWakeAlarm()).Alarm.WakeTime);
        Called("GetWakeAlarm");
        Value("system.wake_cleared", Flag(bios.ClearWakeAlarm(new ClearWakeAlarm()).Cleared));
        Called("ClearWakeAlarm");

        // TimeoutSeconds is optional: without TimeoutSecondsSpecified the proxy leaves it
        // out and the server arms with the timeout it had (300 s at first)
        var armed = bios.SetWatchdog(new SetWatchdog {
            Enabled = true, TimeoutSeconds = watchdogSeconds, TimeoutSecondsSpecified = true }).Watchdog;
        Called("SetWatchdog");
        Value("system.watchdog_armed", armed.TimeoutSeconds);
        Value("system.watchdog_pet_deadline", bios.PetWatchdog(new PetWatchdog()).Watchdog.Deadline);
        Called("PetWatchdog");
        Value("system.watchdog_enabled", Flag(bios.GetWatchdog(new GetWatchdog()).Watchdog.Enabled));
        Called("GetWatchdog");
        Value("system.watchdog_disarmed",
              Flag(bios.SetWatchdog(new SetWatchdog { Enabled = false }).Watchdog.Enabled));

        var entries = bios.GetSystemEventLog(new GetSystemEventLog()).Entries ?? new SelEntry[0];
        Called("GetSystemEventLog");
        Value("system.sel_entries", entries.Length);
        Value("system.sel_last_id", entries.Length == 0 ? 0 : entries.Max(e => e.Id));
        Value("system.sel_message_ids", string.Join(",", entries.Select(e => e.MessageId)));
        Value("system.sel_removed", bios.ClearSystemEventLog(new ClearSystemEventLog()).Removed);
        Called("ClearSystemEventLog");
        // arming and disarming set OsWatchdogTimer: the attributes' version moved on
        version = bios.GetAttributes(new GetAttributes()).Version;
    }

    // -- credential (last: the renewed certificate replaces this one) ----------------

    static void Credential(VbiosService bios, byte[] csr)
    {
        var state = bios.GetProvisioningState(new GetProvisioningState());
        Called("GetProvisioningState");
        Value("provisioning.state", state.State);
        Value("provisioning.next", state.NextStep);
        var renewed = bios.RenewCertificate(new RenewCertificate { CertificateRequest = csr });
        Called("RenewCertificate");
        Value("renewed.serial", renewed.Serial);
        Value("renewed.certificate", Convert.ToBase64String(renewed.Certificate));
        Value("renewed.ca", Convert.ToBase64String(renewed.CaCertificate));
        Value("version.final", version);
    }

    // -- helpers -------------------------------------------------------------------

    static long Written(long newVersion, string operation)
    {
        Called(operation);
        return newVersion;
    }

    static void Called(string operation) => Console.WriteLine("CALLED " + operation);

    static void Value(string key, object value) => Console.WriteLine("VALUE " + key + " " + value);

    static string Flag(bool value) => value ? "true" : "false";

    static AttributeValue Integer(string name, long value) =>
        new AttributeValue { Name = name, IntegerValue = value, IntegerValueSpecified = true };

    static AttributeValue Boolean(string name, bool value) =>
        new AttributeValue { Name = name, BooleanValue = value, BooleanValueSpecified = true };

    static AttributeValue Text(string name, string value) =>
        new AttributeValue { Name = name, StringValue = value };

    static string Show(AttributeValue a) =>
        a.Name + "=" + (a.IntegerValueSpecified ? a.IntegerValue.ToString()
                        : a.BooleanValueSpecified ? Flag(a.BooleanValue) : a.StringValue);

    static string Pcrs(PcrValue[] pcrs) =>
        string.Join(",", pcrs.Select(p => p.Index + ":" + Hex(p.Value)));

    static string DetailText(XmlNode detail, string name)
    {
        var manager = new XmlNamespaceManager(new NameTable());
        manager.AddNamespace("v", Ns);
        var node = detail == null ? null : detail.SelectSingleNode(".//v:" + name, manager);
        return node == null ? "(missing)" : node.InnerText;
    }

    static string Sha256(byte[] bytes) => Hex(SHA256.Create().ComputeHash(bytes));

    static string Hex(byte[] bytes) => BitConverter.ToString(bytes).Replace("-", "").ToLowerInvariant();

    static byte[] ParseHex(string hex) =>
        Enumerable.Range(0, hex.Length / 2).Select(i => Convert.ToByte(hex.Substring(2 * i, 2), 16)).ToArray();

    static Dictionary<string, string> ParseOptions(string[] args)
    {
        var options = new Dictionary<string, string>();
        for (int i = 0; i < args.Length; i++)
        {
            if (!args[i].StartsWith("--"))
                throw new ArgumentException("unexpected argument " + args[i]);
            var name = args[i].Substring(2);
            options[name] = name == "probe" ? "" : args[++i];
        }
        return options;
    }
}
