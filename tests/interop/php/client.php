<?php
// The PHP SoapClient of the interop tier: reads the committed WSDL at run time and calls
// every guest operation (and the admin-only GetDomainPowerState, plus the Secure Boot
// certificate writes the server keeps for the admin) over mutual TLS.
//
//   php client.php INPUT.json
//
// INPUT.json (written by tests/interop/test_php.py) names the WSDL, the server URL, the
// guest's and the admin's bundles and the inputs (attribute changes, a Secure Boot
// certificate, a quote nonce, a signed firmware capsule, a CSR). Prints "CALLED <Operation>" after each answered
// call and, last, "RESULT <json>": what the server answered, for the test to compare
// with what the Python guest library reads.

declare(strict_types=1);

/** A SoapClient from the WSDL file, over mutual TLS with $bundle (cert, key, ca). */
function soap_client(array $in, array $bundle): SoapClient
{
    $context = stream_context_create(['ssl' => [
        'local_cert' => $bundle['cert'],
        'local_pk' => $bundle['key'],
        'cafile' => $bundle['ca'],
        'verify_peer' => true,
        'verify_peer_name' => true,
        'peer_name' => $in['peer_name'],
        'allow_self_signed' => false,
    ]]);
    return new SoapClient($in['wsdl'], [
        'location' => $in['url'],
        'stream_context' => $context,
        'trace' => (bool) getenv('INTEROP_TRACE'),  // debugging only
        'exceptions' => true,
        'typemap' => [[  // xs:unsignedLong as its decimal text (see README.md)
            'type_ns' => 'http://www.w3.org/2001/XMLSchema', 'type_name' => 'unsignedLong',
            'from_xml' => 'unsigned_long_text']],
    ]);
}

/** The text of an xs:unsignedLong element (FirmwareJob's MonotonicCount, a UINT64):
 *  ext/soap reads the type as a PHP int, or as a float that loses digits past PHP_INT_MAX;
 *  the typemap hands the element's XML here instead. */
function unsigned_long_text(string $xml): string
{
    if (!preg_match('/>\s*([0-9]{1,20})\s*</', $xml, $match)) {
        throw new RuntimeException("not an xs:unsignedLong: $xml");
    }
    return $match[1];
}

/** Call $operation, print CALLED on an answer; a SoapFault propagates. */
function call(SoapClient $client, string $operation, array $request = []): object
{
    try {
        $answer = $client->__soapCall($operation, [$request]);
    } catch (SoapFault $fault) {
        if (getenv('INTEROP_TRACE')) {
            fwrite(STDERR, $client->__getLastRequest() . "\n" . $client->__getLastResponse() . "\n");
        }
        throw $fault;
    }
    echo "CALLED $operation\n";
    return $answer;
}

/** A maxOccurs="unbounded" element as a list: without SOAP_SINGLE_ELEMENT_ARRAYS (not a
 *  default option) ext/soap gives one occurrence as the object itself, none as null. */
function items(mixed $value): array
{
    if ($value === null) {
        return [];
    }
    return is_array($value) ? $value : [$value];
}

/** AttributeValue elements for a name => value map (bool, int or string). */
function attribute_values(array $changes): array
{
    $values = [];
    foreach ($changes as $name => $value) {
        $field = is_bool($value) ? 'BooleanValue' : (is_int($value) ? 'IntegerValue' : 'StringValue');
        $values[] = ['Name' => (string) $name, $field => $value];
    }
    return ['AttributeValue' => $values];
}

/** name => value of an AttributeValueList answer. */
function attribute_map(object $list): array
{
    $map = [];
    foreach (items($list->AttributeValue ?? null) as $item) {
        $map[$item->Name] = $item->StringValue ?? $item->IntegerValue ?? $item->BooleanValue ?? null;
    }
    return $map;
}

function pem_certificate(string $der): string
{
    return "-----BEGIN CERTIFICATE-----\n" . chunk_split(base64_encode($der), 64, "\n")
        . "-----END CERTIFICATE-----\n";
}

$in = json_decode(file_get_contents($argv[1]), true, 16, JSON_THROW_ON_ERROR);
$guest = soap_client($in, $in['guest']);
$admin = soap_client($in, $in['admin']);
$out = [];

// -- attributes ------------------------------------------------------------------------
$registry = call($guest, 'GetAttributeRegistry');
$out['registry'] = [];
foreach (items($registry->Attributes->AttributeDefinition ?? null) as $definition) {
    $out['registry'][$definition->Name] = [
        'type' => $definition->Type, 'read_only' => $definition->ReadOnly];
}
foreach (array_merge($in['immediate'], $in['on_reset']) as $name => $_) {
    if (($out['registry'][$name]['read_only'] ?? true) !== false) {
        throw new RuntimeException("$name is not a writable attribute of the registry");
    }
}
$start = call($guest, 'GetAttributes');
$version = $start->Version;
$version = call($guest, 'SetAttributes', ['Attributes' => attribute_values($in['immediate']),
    'ApplyTime' => 'Immediate', 'ExpectedVersion' => $version])->Version;
try {  // the version before that write is stale now: a typed fault
    call($guest, 'SetAttributes', ['Attributes' => attribute_values($in['immediate']),
        'ApplyTime' => 'Immediate', 'ExpectedVersion' => $start->Version]);
    throw new RuntimeException('a stale ExpectedVersion was accepted');
} catch (SoapFault $fault) {
    $detail = $fault->detail->VbiosFaultDetail;
    $out['fault'] = ['class' => get_class($fault), 'faultcode' => $fault->faultcode,
        'code' => $detail->Code, 'message' => $detail->Message];
}
$named = call($guest, 'GetAttributes', ['Names' => ['Name' => array_keys($in['immediate'])]]);
$out['attributes_after_set'] = attribute_map($named->Attributes);
$version = call($guest, 'SetAttributes', ['Attributes' => attribute_values($in['on_reset']),
    'ApplyTime' => 'OnReset', 'ExpectedVersion' => $version])->Version;
$out['pending_after_set'] = attribute_map(call($guest, 'GetPendingAttributes')->Attributes);
$version = call($guest, 'CancelPendingAttributes', ['ExpectedVersion' => $version])->Version;
$version = call($guest, 'ResetAttributesToDefaults', ['ExpectedVersion' => $version])->Version;
$out['pending_defaults'] = attribute_map(call($guest, 'GetPendingAttributes')->Attributes);
$version = call($guest, 'CancelPendingAttributes', ['ExpectedVersion' => $version])->Version;
$password = $in['setup_password'];
$version = call($guest, 'ChangePassword', ['PasswordName' => 'SetupPassword',
    'NewPassword' => $password, 'ExpectedVersion' => $version])->Version;
$out['password_set'] = call($guest, 'GetAttributes', ['Names' => ['Name' => ['NumLock']]])
    ->SetupPasswordSet;
$version = call($guest, 'ChangePassword', ['PasswordName' => 'SetupPassword',
    'OldPassword' => $password, 'NewPassword' => '', 'ExpectedVersion' => $version,
    'Password' => $password])->Version;

// -- boot ------------------------------------------------------------------------------
$boot = call($guest, 'GetBootOrder');
$order = array_reverse(items($boot->Order->OptionId ?? null));
$version = call($guest, 'SetBootOrder', ['Order' => ['OptionId' => $order],
    'ExpectedVersion' => $version])->Version;
$version = call($guest, 'SetBootNext', ['BootNext' => $order[0],
    'ExpectedVersion' => $version])->Version;
$boot = call($guest, 'GetBootOrder');
$out['boot'] = ['order' => items($boot->Order->OptionId ?? null),
    'boot_next' => $boot->BootNext ?? null, 'version' => $boot->Version];

// -- Secure Boot -----------------------------------------------------------------------
$secure = call($guest, 'GetSecureBoot');
$out['secure_boot_before'] = $secure->Enabled;
$version = call($guest, 'SetSecureBoot', ['Enabled' => !$secure->Enabled,
    'ExpectedVersion' => $version])->Version;
$out['secure_boot_pending'] = call($guest, 'GetSecureBoot')->PendingEnabled ?? null;
$version = call($guest, 'ResetSecureBootKeys', ['ResetKeysType' => 'ResetAllKeysToDefault',
    'ExpectedVersion' => $version])->Version;
$database = $in['secure_boot_database'];
call($admin, 'AddSecureBootCertificate', ['Domain' => $in['domain'], 'Database' => $database,
    'Certificate' => file_get_contents($in['secure_boot_certificate'])]);
$out['databases'] = [];
foreach (items(call($guest, 'GetSecureBootDatabases')->Databases->Database ?? null) as $db) {
    $out['databases'][$db->Name] = array_map(fn ($c) => $c->Sha256,
        items($db->Certificates->Certificate ?? null));
}
$added = end($out['databases'][$database]);
$out['removed'] = $added;
call($admin, 'RemoveSecureBootCertificate', ['Domain' => $in['domain'],
    'Database' => $database, 'Sha256' => $added]);

// -- power -----------------------------------------------------------------------------
$out['power_before'] = call($guest, 'GetPowerState')->PowerState;
// events: subscribed (every type: EventTypes left out) before the Reset, read after it
$subscribed = call($guest, 'Subscribe', ['ExpiresIn' => $in['events']['expires_in']]);
$reset = call($guest, 'Reset', ['ResetType' => 'On']);
$out['reset'] = ['power_state' => $reset->PowerState, 'message' => $reset->Message];
$out['power_after'] = call($guest, 'GetPowerState')->PowerState;
$domain = call($admin, 'GetDomainPowerState', ['Domain' => $in['domain']]);
$out['domain_power'] = ['power_state' => $domain->PowerState, 'machine' => $domain->Machine];
$out['secure_boot_after_reset'] = call($guest, 'GetSecureBoot')->Enabled;

// -- events: what the Reset published, from the Subscribe's cursor (an xs:long: an int) --
$read = call($guest, 'GetEvents', ['SubscriptionId' => $subscribed->SubscriptionId,
    'Cursor' => $subscribed->Cursor, 'Wait' => $in['events']['wait']]);
$events = items($read->Events->Event ?? null);
$out['events'] = ['subscription_id' => $subscribed->SubscriptionId,
    'cursor' => $subscribed->Cursor, 'expires' => $subscribed->Expires,
    'event_ids' => array_map(fn ($e) => $e->EventId, $events),
    'event_types' => array_map(fn ($e) => $e->EventType, $events),
    'event_domains' => array_map(fn ($e) => $e->Domain ?? null, $events),  // optional
    'next_cursor' => $read->NextCursor, 'events_lost' => $read->EventsLost,
    'renewed_expires' => call($guest, 'Renew', ['SubscriptionId' => $subscribed->SubscriptionId,
        'ExpiresIn' => $in['events']['renew_in']])->Expires,
    'unsubscribed' => call($guest, 'Unsubscribe',
        ['SubscriptionId' => $subscribed->SubscriptionId])->SubscriptionId];

// -- attestation -----------------------------------------------------------------------
$measured = call($guest, 'GetBootMeasurements', ['Bank' => $in['bank']]);
$out['measurements'] = ['bank' => $measured->Bank,
    'pcrs' => array_map(fn ($p) => $p->Index, items($measured->Pcrs->PcrValue ?? null)),
    'events' => count(items($measured->Events->MeasuredEvent ?? null))];
$quote = call($guest, 'GetQuote', ['Nonce' => base64_decode($in['nonce']), 'Bank' => $in['bank'],
    'PcrSelection' => ['Index' => $in['pcrs']]]);  // base64Binary: ext/soap encodes raw bytes
$pcrs = [];
foreach (items($quote->Pcrs->PcrValue ?? null) as $pcr) {
    $pcrs[] = ['index' => $pcr->Index, 'value' => base64_encode($pcr->Value)];
}
$out['quote'] = ['attest' => base64_encode($quote->Attest),
    'signature' => base64_encode($quote->Signature), 'bank' => $quote->Bank, 'pcrs' => $pcrs,
    'ak_certificate' => base64_encode($quote->AkCertificate),
    'event_log' => base64_encode($quote->EventLog)];
$status = call($guest, 'GetIntegrityStatus')->Status;
$out['integrity'] = ['state' => $status->State, 'bank' => $status->Bank];
$reference = call($guest, 'GetReferenceMeasurements');
$out['reference_digest'] = $reference->ReferenceDigest ?? null;
$diagnostics = call($guest, 'CollectDiagnostics');
$out['diagnostics'] = ['state' => $diagnostics->Status->State,
    'audit_operations' => array_map(fn ($e) => $e->Operation,
        items($diagnostics->AuditEntries->AuditEntry ?? null))];

// -- firmware update (after the reset: the job waits for the next one) -----------------
$firmware = $in['firmware'];
$entry = items(call($guest, 'GetFirmwareInventory')->Firmware->Entry ?? null)[0];
$out['firmware'] = ['fw_version' => $entry->FwVersion, 'active_slot' => $entry->ActiveSlot];
$capsule = file_get_contents($firmware['capsule']);
$upload = call($guest, 'BeginFirmwareUpload', ['Size' => $firmware['size'],
    'Sha256' => $firmware['sha256']]);
$chunk_size = min($firmware['chunk_size'], $upload->MaxChunkSize);
$offset = $upload->NextOffset;
$chunks = 0;
while ($offset < strlen($capsule)) {  // each chunk starts where the server says
    $chunk = substr($capsule, $offset, $chunk_size);
    $next = call($guest, 'UploadFirmwareChunk', ['UploadId' => $upload->UploadId,
        'Offset' => $offset, 'Data' => $chunk, 'Sha256' => hash('sha256', $chunk)])->NextOffset;
    if ($next <= $offset) {
        throw new RuntimeException("the upload did not move past offset $offset");
    }
    $offset = $next;
    $chunks++;
}
$out['firmware']['chunks'] = $chunks;
$out['firmware']['next_offset'] = call($guest, 'GetFirmwareUpload',
    ['UploadId' => $upload->UploadId])->NextOffset;
$job = call($guest, 'CommitFirmwareUpload', ['UploadId' => $upload->UploadId,
    'ApplyTime' => 'OnReset'])->Job;
$out['firmware'] += ['job_id' => $job->JobId, 'state' => $job->State, 'slot' => $job->Slot,
    'monotonic_count' => $job->MonotonicCount];
$out['firmware']['job_state'] = call($guest, 'GetFirmwareJob', ['JobId' => $job->JobId])
    ->Job->State;
$out['firmware']['history'] = array_map(fn ($j) => $j->JobId,
    items(call($guest, 'GetFirmwareHistory')->Jobs->Job ?? null));

// -- system management and thermal (after the reset: the log holds its power entries) --
$smbios = call($guest, 'GetSmbios');
$out['system'] = ['bios_vendor' => $smbios->Bios->Vendor,
    'bios_version' => $smbios->Bios->Version, 'system_serial' => $smbios->System->SerialNumber,
    'system_uuid' => $smbios->System->Uuid];
$cpu = null;
foreach (items(call($guest, 'GetThermal')->Temperatures->Sensor ?? null) as $sensor) {
    if ($sensor->PhysicalContext === 'CPU') {
        $cpu = $sensor;
    }
}
if ($cpu === null || !is_float($cpu->Reading)) {  // xs:double: a PHP float
    throw new RuntimeException('GetThermal answered no CPU reading as a float');
}
$out['system'] += ['cpu_reading' => $cpu->Reading,
    'cpu_upper_critical' => $cpu->Thresholds->UpperCritical->Reading];
$wake = gmdate('Y-m-d\TH:i:s\Z', time() + 600);  // RFC 3339, xs:string in the WSDL
call($guest, 'SetWakeAlarm', ['WakeTime' => $wake]);
$out['system'] += ['wake_set' => $wake,
    'wake_read' => call($guest, 'GetWakeAlarm')->Alarm->WakeTime,
    'wake_cleared' => call($guest, 'ClearWakeAlarm')->Cleared];
$armed = call($guest, 'SetWatchdog', ['Enabled' => true,
    'TimeoutSeconds' => $in['watchdog_seconds']])->Watchdog;
$out['system'] += ['watchdog_armed' => $armed->TimeoutSeconds,
    'watchdog_pet_deadline' => call($guest, 'PetWatchdog')->Watchdog->Deadline,
    'watchdog_enabled' => call($guest, 'GetWatchdog')->Watchdog->Enabled,
    'watchdog_disarmed' => call($guest, 'SetWatchdog', ['Enabled' => false])
        ->Watchdog->Enabled];
$entries = items(call($guest, 'GetSystemEventLog')->Entries->Entry ?? null);
$out['system'] += ['sel_entries' => count($entries),
    'sel_last_id' => max(array_map(fn ($e) => $e->Id, $entries) ?: [0]),
    'sel_message_ids' => array_map(fn ($e) => $e->MessageId, $entries),
    'sel_removed' => call($guest, 'ClearSystemEventLog')->Removed];

// -- credential (last: using the renewed certificate revokes the old one) --------------
$out['provisioning_before'] = call($guest, 'GetProvisioningState')->State;
$issued = call($guest, 'RenewCertificate',
    ['CertificateRequest' => file_get_contents($in['certificate_request'])]);
file_put_contents($in['renewed']['cert'], pem_certificate($issued->Certificate));
$out['renewed_serial'] = $issued->Serial;
$renewed = soap_client($in, $in['renewed']);
$out['provisioning_renewed'] = call($renewed, 'GetProvisioningState')->State;
$final = call($renewed, 'GetAttributes');
$out['final'] = ['version' => $final->Version, 'attributes' => attribute_map($final->Attributes),
    'setup_password_set' => $final->SetupPasswordSet];

echo 'RESULT ' . json_encode($out, JSON_THROW_ON_ERROR) . "\n";
