// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @title OreLotRegistry
/// @notice The provenance record of ore lots from mine face to buyer: registration, transformation
/// with mass conserved, two-step custody, lab assays, anchored documents, device-measured loads and
/// corrections. Not upgradeable: history must not change under an auditor.
/// @dev Storage per lot is one slot (custodian + remaining mass). Every other attribute lives in
/// events, which carry everything an indexer needs to rebuild the state without calling the
/// contract. Masses are integer grams, grades integer parts per million.
contract OreLotRegistry is AccessControl, Pausable, EIP712 {
    /// @notice The kinds of transformation; they differ in the shape they allow.
    /// Split: one input, any outputs. Merge, Blend: two or more inputs, one output. Process: any.
    enum TransformKind {
        Split,
        Merge,
        Blend,
        Process
    }

    /// @notice CBV 2.0 error-declaration reasons for a correction.
    enum CorrectionReason {
        DidNotOccur,
        IncorrectData
    }

    /// @notice The one storage slot a lot occupies.
    struct Lot {
        address custodian;
        uint96 remainingG;
    }

    /// @notice A lot as registered at the face; its site is given once per batch.
    struct LotRegistration {
        bytes32 lotId;
        bytes32 face;
        bytes32 commodity;
        uint96 massG;
        uint32 gradePpm;
        uint64 extractedAt;
        bytes32 recordHash;
    }

    /// @notice What a device signs about one load: the truck trip that produced a lot.
    struct DeviceAttestation {
        bytes32 tripId;
        uint64 loadedAt;
        bytes signature;
    }

    /// @notice One input of a transformation: how much of a lot it consumes.
    struct TransformInput {
        bytes32 lotId;
        uint96 massG;
    }

    /// @notice One output lot of a transformation.
    struct TransformOutput {
        bytes32 lotId;
        bytes32 commodity;
        uint96 massG;
        uint32 gradePpm;
        bytes32 recordHash;
    }

    /// @notice A lab's assay of a lot, signed by the lab key (EIP-712).
    struct Assay {
        bytes32 lotId;
        uint32 gradePpm;
        bytes32 method;
        bytes32 certificateHash;
        uint64 assayedAt;
    }

    /// @notice A device registered for one site.
    struct Device {
        bytes32 site;
        bytes32 kind;
        bool active;
    }

    /// @notice Role of process operators (crushers, wash plants, blending yards).
    bytes32 public constant PROCESSOR_ROLE = keccak256("PROCESSOR_ROLE");
    /// @notice Role of accredited assay labs whose signatures the registry accepts.
    bytes32 public constant LAB_ROLE = keccak256("LAB_ROLE");
    /// @notice Base of the per-site registrar roles; see {registrarRole}.
    bytes32 public constant REGISTRAR_ROLE = keccak256("REGISTRAR_ROLE");

    /// @notice EIP-712 type hash of {Assay}.
    bytes32 public constant ASSAY_TYPEHASH = keccak256(
        "Assay(bytes32 lotId,uint32 gradePpm,bytes32 method,bytes32 certificateHash,uint64 assayedAt)"
    );
    /// @notice EIP-712 type hash of a device-signed load.
    bytes32 public constant LOAD_TYPEHASH = keccak256(
        "Load(bytes32 lotId,bytes32 site,bytes32 face,bytes32 tripId,uint96 massG,uint64 loadedAt)"
    );

    /// @notice Largest mass of a lot, a loss, a correction or a stock count: 2^63 - 1 grams (9.2
    /// trillion tonnes), so that every SQL database can hold any mass the registry accepts as a
    /// signed 64-bit integer and no event can stall an index.
    uint96 public constant MAX_MASS_G = uint96(type(uint64).max >> 1);
    /// @notice Highest grade: the whole lot.
    uint32 public constant MAX_GRADE_PPM = 1_000_000;
    /// @notice How far a device or truck clock may run ahead of the chain.
    uint64 public constant MAX_CLOCK_SKEW = 15 minutes;

    mapping(bytes32 lotId => Lot) private _lots;
    mapping(bytes32 lotId => address receiver) private _pendingCustodians;
    mapping(bytes32 digest => bool) private _usedAssays;
    mapping(address device => Device) private _devices;
    uint256 private _transformCount;

    /// @notice Lots were registered at `site`, held by `custodian`: the {LotRegistered} events that
    /// follow in the same transaction, up to the next {LotsRegistered}.
    event LotsRegistered(bytes32 indexed site, address custodian);
    /// @notice A lot was registered at the face; its site and custodian are those of the preceding
    /// {LotsRegistered}. `measurement` packs three numbers in one word to keep a truckload's gas down:
    /// `massG | gradePpm << 96 | extractedAt << 128` (see {packMeasurement}).
    event LotRegistered(
        bytes32 indexed lotId, bytes32 face, bytes32 commodity, uint256 measurement, bytes32 recordHash
    );
    /// @notice A registered lot's mass was measured and signed by `device` on truck trip `tripId`.
    event LoadAttested(bytes32 indexed lotId, address indexed device, bytes32 tripId, uint64 loadedAt);
    /// @notice A transformation happened; its inputs and outputs follow as {LotConsumed} and {LotCreated}.
    event LotsTransformed(
        uint256 indexed transformId,
        address indexed operator,
        TransformKind kind,
        bytes32 site,
        uint96 lossG,
        bytes32 recordHash
    );
    /// @notice `massG` of a lot was consumed by transformation `transformId`, leaving `remainingG`.
    event LotConsumed(bytes32 indexed lotId, uint256 indexed transformId, uint96 massG, uint96 remainingG);
    /// @notice Transformation `transformId` created a lot held by `custodian`.
    event LotCreated(
        bytes32 indexed lotId,
        uint256 indexed transformId,
        address indexed custodian,
        bytes32 commodity,
        uint96 massG,
        uint32 gradePpm,
        bytes32 recordHash
    );
    /// @notice The custodian offered the lot to `to`; custody moves only when `to` accepts.
    event CustodyOffered(bytes32 indexed lotId, address indexed from, address indexed to);
    /// @notice The offer to `to` was withdrawn by the custodian.
    event CustodyOfferCancelled(bytes32 indexed lotId, address indexed from, address indexed to);
    /// @notice `to` accepted the lot and is now its custodian.
    event CustodyAccepted(bytes32 indexed lotId, address indexed from, address indexed to);
    /// @notice A lab's signed assay was recorded; `signature` lets anyone re-check it.
    event AssayRecorded(
        bytes32 indexed lotId,
        address indexed lab,
        uint32 gradePpm,
        bytes32 method,
        bytes32 certificateHash,
        uint64 assayedAt,
        address submitter,
        bytes signature
    );
    /// @notice The custodian anchored a document's hash to a lot.
    event DocumentAnchored(bytes32 indexed lotId, bytes32 indexed documentHash, address indexed by, bytes32 kind);
    /// @notice A device (haul truck, weighbridge, payload scale) may now attest loads at `site`.
    event DeviceAdded(address indexed device, bytes32 indexed site, bytes32 kind, address by);
    /// @notice A device may attest no more loads; its earlier attestations stay valid.
    event DeviceRevoked(address indexed device, bytes32 indexed site, address by);
    /// @notice A lot's record was declared wrong; `adjustmentG` corrects its remaining mass.
    event LotCorrected(
        bytes32 indexed lotId,
        address indexed by,
        CorrectionReason reason,
        int256 adjustmentG,
        uint96 remainingG,
        bytes32 recordHash
    );
    /// @notice A physical stock count was taken at `site`, to compare with book stock.
    event StockCounted(bytes32 indexed site, address indexed by, uint96 countedG, uint64 countedAt, bytes32 recordHash);

    /// @notice The lot id is already taken.
    error OreLotRegistryLotExists(bytes32 lotId);
    /// @notice No lot has this id.
    error OreLotRegistryUnknownLot(bytes32 lotId);
    /// @notice The lot has no mass left.
    error OreLotRegistryLotConsumed(bytes32 lotId);
    /// @notice `account` is not the lot's custodian.
    error OreLotRegistryNotCustodian(bytes32 lotId, address account);
    /// @notice A lot cannot give `requestedG`: only `remainingG` is left.
    error OreLotRegistryInsufficientMass(bytes32 lotId, uint96 remainingG, uint96 requestedG);
    /// @notice Inputs consumed must equal outputs plus declared loss.
    error OreLotRegistryMassNotConserved(uint256 consumedG, uint256 producedG, uint96 lossG);
    /// @notice A lot id, site, commodity or hash that must be set is zero.
    error OreLotRegistryZeroValue(string field);
    /// @notice Masses are positive.
    error OreLotRegistryZeroMass(bytes32 lotId);
    /// @notice A mass above {MAX_MASS_G}.
    error OreLotRegistryMassTooLarge(bytes32 subject, uint256 massG);
    /// @notice Grades are parts per million, at most 1,000,000.
    error OreLotRegistryInvalidGrade(bytes32 lotId, uint32 gradePpm);
    /// @notice A time lies further in the future than clocks may skew.
    error OreLotRegistryTimeInFuture(bytes32 subject, uint64 time);
    /// @notice The transformation's numbers of inputs and outputs do not fit its kind.
    error OreLotRegistryInvalidShape(TransformKind kind, uint256 inputs, uint256 outputs);
    /// @notice Arrays that must pair up differ in length.
    error OreLotRegistryLengthMismatch(uint256 lots, uint256 attestations);
    /// @notice An empty batch.
    error OreLotRegistryEmptyBatch();
    /// @notice The same lot is named twice as an input.
    error OreLotRegistryDuplicateInput(bytes32 lotId);
    /// @notice The lot is offered to someone; cancel or complete the handover first.
    error OreLotRegistryHandoverPending(bytes32 lotId, address receiver);
    /// @notice The lot is not offered to anyone.
    error OreLotRegistryNoPendingHandover(bytes32 lotId);
    /// @notice `account` is not the address the lot was offered to.
    error OreLotRegistryNotReceiver(bytes32 lotId, address account);
    /// @notice The receiver is the zero address or the custodian itself.
    error OreLotRegistryInvalidReceiver(bytes32 lotId, address receiver);
    /// @notice The assay signature does not recover to an account with the lab role.
    error OreLotRegistryInvalidLabSignature(bytes32 lotId, address recovered);
    /// @notice This exact assay was recorded before.
    error OreLotRegistryAssayReplayed(bytes32 lotId, bytes32 digest);
    /// @notice The load signature does not recover to an active device of the lot's site.
    error OreLotRegistryInvalidDeviceSignature(bytes32 lotId, address recovered);
    /// @notice The device is already registered (devices are never re-used, so history stays clear).
    error OreLotRegistryDeviceExists(address device);
    /// @notice No active device at this address.
    error OreLotRegistryUnknownDevice(address device);
    /// @notice `account` may not manage the devices of `site`.
    error OreLotRegistryNotSiteRegistrar(bytes32 site, address account);
    /// @notice A correction would leave a negative or overflowing mass, or does not void a lot that did not occur.
    error OreLotRegistryInvalidCorrection(bytes32 lotId, int256 adjustmentG, uint96 remainingG);

    /// @param admin The account that holds the admin role: grants roles, pauses.
    constructor(address admin) EIP712("OreLotRegistry", "1") {
        if (admin == address(0)) revert OreLotRegistryZeroValue("admin");
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    // ------------------------------------------------------------------ roles and pause

    /// @notice The role that lets an account register lots, devices and stock counts for `site`.
    function registrarRole(bytes32 site) public pure returns (bytes32) {
        return keccak256(abi.encode(REGISTRAR_ROLE, site));
    }

    /// @notice Stops every state change but role administration. Admin only.
    function pause() external onlyRole(DEFAULT_ADMIN_ROLE) {
        _pause();
    }

    /// @notice Resumes state changes. Admin only.
    function unpause() external onlyRole(DEFAULT_ADMIN_ROLE) {
        _unpause();
    }

    // ------------------------------------------------------------------ registration

    /// @notice Registers one lot at `site`, held by the caller, a registrar of that site.
    function registerLot(bytes32 site, LotRegistration calldata lot) external whenNotPaused {
        _checkRole(registrarRole(site));
        _openBatch(site, 1);
        _register(lot);
    }

    /// @notice Registers many lots at `site` in one transaction (a shift of truckloads), all held by the caller.
    function registerLots(bytes32 site, LotRegistration[] calldata lots) external whenNotPaused {
        _checkRole(registrarRole(site));
        uint256 count = lots.length;
        _openBatch(site, count);
        for (uint256 i = 0; i < count; ++i) {
            _register(lots[i]);
        }
    }

    /// @notice Registers lots whose mass a device of `site` measured and signed (EIP-712 `Load`).
    /// @dev A signature cannot be replayed: it names its lot id, and a lot id registers once.
    function registerAttestedLots(
        bytes32 site,
        LotRegistration[] calldata lots,
        DeviceAttestation[] calldata attestations
    ) external whenNotPaused {
        _checkRole(registrarRole(site));
        uint256 count = lots.length;
        if (attestations.length != count) revert OreLotRegistryLengthMismatch(count, attestations.length);
        _openBatch(site, count);
        for (uint256 i = 0; i < count; ++i) {
            LotRegistration calldata lot = lots[i];
            DeviceAttestation calldata attestation = attestations[i];
            address device = _recoverDevice(site, lot, attestation);
            _register(lot);
            emit LoadAttested(lot.lotId, device, attestation.tripId, attestation.loadedAt);
        }
    }

    // ------------------------------------------------------------------ transformation

    /// @notice Consumes mass from input lots and creates output lots held by the caller.
    /// Inputs consumed must equal outputs plus `lossG`; the caller must hold every input and the processor role.
    /// @return transformId The sequence number of this transformation.
    function transform(
        TransformKind kind,
        bytes32 site,
        TransformInput[] calldata inputs,
        TransformOutput[] calldata outputs,
        uint96 lossG,
        bytes32 recordHash
    ) external whenNotPaused onlyRole(PROCESSOR_ROLE) returns (uint256 transformId) {
        _checkShape(kind, inputs.length, outputs.length);
        if (lossG > MAX_MASS_G) revert OreLotRegistryMassTooLarge(site, lossG);
        if (site == bytes32(0)) revert OreLotRegistryZeroValue("site");
        transformId = ++_transformCount;
        emit LotsTransformed(transformId, msg.sender, kind, site, lossG, recordHash);

        uint256 consumedG;
        for (uint256 i = 0; i < inputs.length; ++i) {
            TransformInput calldata input = inputs[i];
            for (uint256 j = 0; j < i; ++j) {
                if (inputs[j].lotId == input.lotId) revert OreLotRegistryDuplicateInput(input.lotId);
            }
            if (input.massG == 0) revert OreLotRegistryZeroMass(input.lotId);
            Lot storage lot = _heldLot(input.lotId);
            if (lot.remainingG == 0) revert OreLotRegistryLotConsumed(input.lotId);
            if (input.massG > lot.remainingG) {
                revert OreLotRegistryInsufficientMass(input.lotId, lot.remainingG, input.massG);
            }
            address receiver = _pendingCustodians[input.lotId];
            if (receiver != address(0)) revert OreLotRegistryHandoverPending(input.lotId, receiver);
            uint96 remainingG = lot.remainingG - input.massG;
            lot.remainingG = remainingG;
            consumedG += input.massG;
            emit LotConsumed(input.lotId, transformId, input.massG, remainingG);
        }

        uint256 producedG;
        for (uint256 i = 0; i < outputs.length; ++i) {
            TransformOutput calldata output = outputs[i];
            _checkNewLot(output.lotId, output.massG, output.gradePpm);
            if (output.commodity == bytes32(0)) revert OreLotRegistryZeroValue("commodity");
            _lots[output.lotId] = Lot({custodian: msg.sender, remainingG: output.massG});
            producedG += output.massG;
            emit LotCreated(
                output.lotId, transformId, msg.sender, output.commodity, output.massG, output.gradePpm, output.recordHash
            );
        }
        if (consumedG != producedG + lossG) revert OreLotRegistryMassNotConserved(consumedG, producedG, lossG);
    }

    // ------------------------------------------------------------------ custody

    /// @notice Offers lots to `to`. Custody moves only when `to` accepts; until then the caller may cancel.
    function handOver(bytes32[] calldata lotIds, address to) external whenNotPaused {
        for (uint256 i = 0; i < lotIds.length; ++i) {
            bytes32 lotId = lotIds[i];
            Lot storage lot = _heldLot(lotId);
            if (lot.remainingG == 0) revert OreLotRegistryLotConsumed(lotId);
            if (to == address(0) || to == msg.sender) revert OreLotRegistryInvalidReceiver(lotId, to);
            address receiver = _pendingCustodians[lotId];
            if (receiver != address(0)) revert OreLotRegistryHandoverPending(lotId, receiver);
            _pendingCustodians[lotId] = to;
            emit CustodyOffered(lotId, msg.sender, to);
        }
    }

    /// @notice Withdraws pending offers of lots the caller holds.
    function cancelHandover(bytes32[] calldata lotIds) external whenNotPaused {
        for (uint256 i = 0; i < lotIds.length; ++i) {
            bytes32 lotId = lotIds[i];
            _heldLot(lotId);
            address receiver = _pendingCustodians[lotId];
            if (receiver == address(0)) revert OreLotRegistryNoPendingHandover(lotId);
            delete _pendingCustodians[lotId];
            emit CustodyOfferCancelled(lotId, msg.sender, receiver);
        }
    }

    /// @notice Accepts lots offered to the caller, who becomes their custodian.
    function acceptHandover(bytes32[] calldata lotIds) external whenNotPaused {
        for (uint256 i = 0; i < lotIds.length; ++i) {
            bytes32 lotId = lotIds[i];
            Lot storage lot = _existingLot(lotId);
            address receiver = _pendingCustodians[lotId];
            if (receiver == address(0)) revert OreLotRegistryNoPendingHandover(lotId);
            if (receiver != msg.sender) revert OreLotRegistryNotReceiver(lotId, msg.sender);
            address from = lot.custodian;
            lot.custodian = msg.sender;
            delete _pendingCustodians[lotId];
            emit CustodyAccepted(lotId, from, msg.sender);
        }
    }

    // ------------------------------------------------------------------ assays and documents

    /// @notice Records a lab's signed assay of a lot. Anyone may submit it; the signature decides.
    function submitAssay(Assay calldata assay, bytes calldata signature) external whenNotPaused {
        _existingLot(assay.lotId);
        if (assay.gradePpm > MAX_GRADE_PPM) revert OreLotRegistryInvalidGrade(assay.lotId, assay.gradePpm);
        bytes32 digest = assayDigest(assay);
        (address lab, ECDSA.RecoverError error,) = ECDSA.tryRecoverCalldata(digest, signature);
        if (error != ECDSA.RecoverError.NoError || !hasRole(LAB_ROLE, lab)) {
            revert OreLotRegistryInvalidLabSignature(assay.lotId, lab);
        }
        if (_usedAssays[digest]) revert OreLotRegistryAssayReplayed(assay.lotId, digest);
        _usedAssays[digest] = true;
        emit AssayRecorded(
            assay.lotId,
            lab,
            assay.gradePpm,
            assay.method,
            assay.certificateHash,
            assay.assayedAt,
            msg.sender,
            signature
        );
    }

    /// @notice Anchors a document's hash (assay certificate, weighbridge ticket, photo, ...) to a lot the caller holds.
    function anchorDocument(bytes32 lotId, bytes32 kind, bytes32 documentHash) external whenNotPaused {
        _heldLot(lotId);
        if (documentHash == bytes32(0)) revert OreLotRegistryZeroValue("documentHash");
        if (kind == bytes32(0)) revert OreLotRegistryZeroValue("kind");
        emit DocumentAnchored(lotId, documentHash, msg.sender, kind);
    }

    // ------------------------------------------------------------------ devices, corrections, counts

    /// @notice Lets `device` attest loads at `site`. A registrar of the site or the admin.
    function addDevice(address device, bytes32 site, bytes32 kind) external whenNotPaused {
        if (device == address(0)) revert OreLotRegistryZeroValue("device");
        if (site == bytes32(0)) revert OreLotRegistryZeroValue("site");
        _checkSiteManager(site);
        if (_devices[device].site != bytes32(0)) revert OreLotRegistryDeviceExists(device);
        _devices[device] = Device({site: site, kind: kind, active: true});
        emit DeviceAdded(device, site, kind, msg.sender);
    }

    /// @notice Stops `device` from attesting further loads. A registrar of its site or the admin.
    function revokeDevice(address device) external whenNotPaused {
        Device storage record = _devices[device];
        if (!record.active) revert OreLotRegistryUnknownDevice(device);
        _checkSiteManager(record.site);
        record.active = false;
        emit DeviceRevoked(device, record.site, msg.sender);
    }

    /// @notice Declares a lot's record wrong without rewriting it: `adjustmentG` changes its remaining
    /// mass, and the event references the lot. A lot that did not occur is voided (remaining to zero).
    /// The custodian or the admin.
    function correctLot(bytes32 lotId, CorrectionReason reason, int256 adjustmentG, bytes32 recordHash)
        external
        whenNotPaused
    {
        Lot storage lot = _existingLot(lotId);
        if (lot.custodian != msg.sender && !hasRole(DEFAULT_ADMIN_ROLE, msg.sender)) {
            revert OreLotRegistryNotCustodian(lotId, msg.sender);
        }
        if (recordHash == bytes32(0)) revert OreLotRegistryZeroValue("recordHash");
        int256 corrected = int256(uint256(lot.remainingG)) + adjustmentG;
        bool voids = reason == CorrectionReason.DidNotOccur;
        if (corrected < 0 || corrected > int256(uint256(MAX_MASS_G)) || (voids && corrected != 0)) {
            revert OreLotRegistryInvalidCorrection(lotId, adjustmentG, lot.remainingG);
        }
        uint96 remainingG = uint96(uint256(corrected));
        lot.remainingG = remainingG;
        emit LotCorrected(lotId, msg.sender, reason, adjustmentG, remainingG, recordHash);
    }

    /// @notice Records a physical stock count at `site`. A registrar of the site.
    function recordStockCount(bytes32 site, uint96 countedG, uint64 countedAt, bytes32 recordHash)
        external
        whenNotPaused
    {
        _checkRole(registrarRole(site));
        if (countedG > MAX_MASS_G) revert OreLotRegistryMassTooLarge(site, countedG);
        if (countedAt > block.timestamp + MAX_CLOCK_SKEW) revert OreLotRegistryTimeInFuture(site, countedAt);
        emit StockCounted(site, msg.sender, countedG, countedAt, recordHash);
    }

    // ------------------------------------------------------------------ views

    /// @notice A lot's state: its custodian, remaining mass and pending receiver (zero if none).
    /// @dev An unknown lot has a zero custodian.
    function lotState(bytes32 lotId) external view returns (address custodian, uint96 remainingG, address pendingCustodian) {
        Lot memory lot = _lots[lotId];
        return (lot.custodian, lot.remainingG, _pendingCustodians[lotId]);
    }

    /// @notice The device registered at `device`: its site, kind, and whether it may attest.
    function deviceOf(address device) external view returns (bytes32 site, bytes32 kind, bool active) {
        Device memory record = _devices[device];
        return (record.site, record.kind, record.active);
    }

    /// @notice How many transformations have happened; the last one's id.
    function transformCount() external view returns (uint256) {
        return _transformCount;
    }

    /// @notice Whether this exact assay (by EIP-712 digest) has been recorded.
    function assayRecorded(bytes32 digest) external view returns (bool) {
        return _usedAssays[digest];
    }

    /// @notice The `measurement` word of {LotRegistered}: `massG | gradePpm << 96 | extractedAt << 128`.
    function packMeasurement(uint96 massG, uint32 gradePpm, uint64 extractedAt) public pure returns (uint256) {
        return uint256(massG) | (uint256(gradePpm) << 96) | (uint256(extractedAt) << 128);
    }

    /// @notice The EIP-712 digest a lab signs for `assay`.
    function assayDigest(Assay calldata assay) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    ASSAY_TYPEHASH, assay.lotId, assay.gradePpm, assay.method, assay.certificateHash, assay.assayedAt
                )
            )
        );
    }

    /// @notice The EIP-712 digest a device signs for a load.
    function loadDigest(bytes32 lotId, bytes32 site, bytes32 face, bytes32 tripId, uint96 massG, uint64 loadedAt)
        public
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(keccak256(abi.encode(LOAD_TYPEHASH, lotId, site, face, tripId, massG, loadedAt)));
    }

    // ------------------------------------------------------------------ internals

    function _openBatch(bytes32 site, uint256 count) private {
        if (site == bytes32(0)) revert OreLotRegistryZeroValue("site");
        if (count == 0) revert OreLotRegistryEmptyBatch();
        emit LotsRegistered(site, msg.sender);
    }

    function _register(LotRegistration calldata lot) private {
        _checkNewLot(lot.lotId, lot.massG, lot.gradePpm);
        if (lot.commodity == bytes32(0)) revert OreLotRegistryZeroValue("commodity");
        if (lot.extractedAt > block.timestamp + MAX_CLOCK_SKEW) {
            revert OreLotRegistryTimeInFuture(lot.lotId, lot.extractedAt);
        }
        _lots[lot.lotId] = Lot({custodian: msg.sender, remainingG: lot.massG});
        emit LotRegistered(
            lot.lotId, lot.face, lot.commodity, packMeasurement(lot.massG, lot.gradePpm, lot.extractedAt), lot.recordHash
        );
    }

    function _checkNewLot(bytes32 lotId, uint96 massG, uint32 gradePpm) private view {
        if (lotId == bytes32(0)) revert OreLotRegistryZeroValue("lotId");
        if (massG == 0) revert OreLotRegistryZeroMass(lotId);
        if (massG > MAX_MASS_G) revert OreLotRegistryMassTooLarge(lotId, massG);
        if (gradePpm > MAX_GRADE_PPM) revert OreLotRegistryInvalidGrade(lotId, gradePpm);
        if (_lots[lotId].custodian != address(0)) revert OreLotRegistryLotExists(lotId);
    }

    function _recoverDevice(bytes32 site, LotRegistration calldata lot, DeviceAttestation calldata attestation)
        private
        view
        returns (address device)
    {
        if (attestation.loadedAt > block.timestamp + MAX_CLOCK_SKEW) {
            revert OreLotRegistryTimeInFuture(lot.lotId, attestation.loadedAt);
        }
        bytes32 digest =
            loadDigest(lot.lotId, site, lot.face, attestation.tripId, lot.massG, attestation.loadedAt);
        ECDSA.RecoverError error;
        (device, error,) = ECDSA.tryRecoverCalldata(digest, attestation.signature);
        Device storage record = _devices[device];
        if (error != ECDSA.RecoverError.NoError || !record.active || record.site != site) {
            revert OreLotRegistryInvalidDeviceSignature(lot.lotId, device);
        }
    }

    function _existingLot(bytes32 lotId) private view returns (Lot storage lot) {
        lot = _lots[lotId];
        if (lot.custodian == address(0)) revert OreLotRegistryUnknownLot(lotId);
    }

    function _heldLot(bytes32 lotId) private view returns (Lot storage lot) {
        lot = _existingLot(lotId);
        if (lot.custodian != msg.sender) revert OreLotRegistryNotCustodian(lotId, msg.sender);
    }

    function _checkSiteManager(bytes32 site) private view {
        if (!hasRole(registrarRole(site), msg.sender) && !hasRole(DEFAULT_ADMIN_ROLE, msg.sender)) {
            revert OreLotRegistryNotSiteRegistrar(site, msg.sender);
        }
    }

    function _checkShape(TransformKind kind, uint256 inputs, uint256 outputs) private pure {
        bool valid;
        if (kind == TransformKind.Split) {
            valid = inputs == 1 && outputs >= 1;
        } else if (kind == TransformKind.Merge || kind == TransformKind.Blend) {
            valid = inputs >= 2 && outputs == 1;
        } else {
            valid = inputs >= 1 && outputs >= 1;
        }
        if (!valid) revert OreLotRegistryInvalidShape(kind, inputs, outputs);
    }
}
