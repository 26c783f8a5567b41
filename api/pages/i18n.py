"""The page's words in Korean and English, and which of the two a request gets.

A buyer scans the QR code on Korean paperwork with whatever phone they have: `?lang=ko|en` picks
the language, else the browser's Accept-Language (the first of ko or en it prefers), else
English, the common language of foreign buyers. Every page links to the other language. The
not-found page shows both at once, since it may be all a mistyped link ever shows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

Lang = Literal["en", "ko"]
LANGS: tuple[Lang, ...] = ("en", "ko")
DEFAULT_LANG: Lang = "en"
LANG_NAMES: dict[Lang, str] = {"en": "English", "ko": "한국어"}

WORDS: dict[str, tuple[str, str]] = {
    # key: (English, Korean)
    "title": ("Ore lot {lot_id}: provenance", "광석 로트 {lot_id}: 원산지 증명"),
    "intro": (
        "Every fact on this page is recorded on a blockchain; each links to the transaction that recorded it.",
        "이 페이지의 모든 정보는 블록체인에 기록되어 있으며, 각 정보는 이를 기록한 트랜잭션으로 연결됩니다.",
    ),
    "switch": ("이 페이지를 한국어로 보기", "View this page in English"),
    "verification": ("Verification", "검증"),
    "verified": ("Verified against the chain", "블록체인과 대조하여 검증됨"),
    "verified_detail": (
        "{count} lots (this lot and its lineage) checked against the chain at block {block}; no difference found.",
        "로트 {count}개(이 로트와 그 계보)를 블록 {block} 기준으로 블록체인과 대조했으며 차이가 없습니다.",
    ),
    "failed": ("Verification failed", "검증 실패"),
    "failed_detail": (
        "The database behind this page and the chain disagree on {count} facts (listed below). Do not rely on this page.",
        "이 페이지의 데이터베이스와 블록체인이 {count}건의 정보에서 일치하지 않습니다(아래 참조). 이 페이지를 신뢰하지 마십시오.",
    ),
    "checking": ("Checking against the chain…", "블록체인과 대조하는 중…"),
    "checking_detail": (
        "This lot and its lineage ({count} lots) are being checked against the chain; the facts below come from our database. This page reloads itself in {seconds} seconds.",
        "이 로트와 그 계보(로트 {count}개)를 블록체인과 대조하는 중입니다. 아래 정보는 데이터베이스의 내용입니다. 이 페이지는 {seconds}초 뒤에 다시 읽힙니다.",
    ),
    "unverifiable": ("Could not verify", "검증할 수 없음"),
    "unverifiable_detail": (
        "The facts below come from our database and could not be checked against the chain just now.",
        "아래 정보는 데이터베이스의 내용이며, 지금은 블록체인과 대조할 수 없었습니다.",
    ),
    "reason": ("Reason", "사유"),
    "reason_chain": ("the blockchain node did not answer", "블록체인 노드가 응답하지 않았습니다"),
    "reason_other": ("the check stopped with an error", "검증 중 오류가 발생했습니다"),
    "bound_hit": (
        "The lineage is longer than {count} lots: only the first {count} were checked.",
        "계보가 로트 {count}개보다 길어 처음 {count}개만 검증했습니다.",
    ),
    "chain_id": ("Chain id", "체인 ID"),
    "registry": ("Registry contract", "레지스트리 컨트랙트"),
    "difference": ("Difference", "불일치"),
    "field": ("Field", "항목"),
    "index_value": ("Our database says", "데이터베이스 값"),
    "chain_value": ("The chain says", "블록체인 값"),
    "origin": ("Origin", "원산지"),
    "made_by": (
        "Made by transformation #{transform} at site {site}; its origins and their shares are below.",
        "현장 {site}에서 가공(#{transform})으로 만들어졌습니다. 원산지와 구성비는 아래와 같습니다.",
    ),
    "lot": ("Lot", "로트"),
    "origin_sites": ("Origin sites", "원산지 현장"),
    "site": ("Site", "현장"),
    "face": ("Face", "채굴 막장"),
    "extracted_at": ("Extracted", "채굴 일시"),
    "extraction_day": ("Extraction day", "채굴일"),
    "commodity": ("Commodity", "광종"),
    "mass": ("Mass", "중량"),
    "remaining": ("Remaining", "잔량"),
    "grade": ("Grade", "품위"),
    "custodian": ("Custodian", "현재 보관자"),
    "pending_custodian": ("Offered to", "인계 대기 중인 상대"),
    "status": ("Status", "상태"),
    "status_active": ("active", "유효"),
    "status_consumed": ("used up by a transformation", "가공에 모두 투입됨"),
    "status_voided": ("voided", "무효"),
    "recorded_in": ("Recorded in", "기록 위치"),
    "lineage": ("Lineage", "계보"),
    "lineage_help": (
        "This lot is at the top left; what it was made from is to its right, back to the origin lots; each arrow "
        "points where the mass went and gives the mass it carried. Select a lot to open its page.",
        "이 로트는 왼쪽 위에 있고, 오른쪽으로 원료가 된 로트들이 원광 로트까지 이어집니다. 화살표는 중량이 "
        "이동한 방향과 옮겨진 중량을 나타냅니다. 로트를 선택하면 해당 페이지가 열립니다.",
    ),
    "lineage_cut": (
        "The lineage is deeper than {depth} steps: it is drawn, and shares are computed, down to the deepest lots reached.",
        "계보가 {depth}단계보다 깊어, 도달한 가장 깊은 로트까지만 그리고 계산했습니다.",
    ),
    "lineage_graph": ("Lineage of lot {lot_id}, {count} lots", "로트 {lot_id}의 계보, 로트 {count}개"),
    "legend": ("Origin lots by site", "현장별 원광 로트"),
    "legend_made": ("made by a transformation", "가공으로 생성"),
    "steps": ("Transformations", "가공 단계"),
    "step": ("Step", "단계"),
    "inputs": ("Inputs (mass carried)", "투입(이동 중량)"),
    "output": ("Output", "산출"),
    "shares": ("Origin shares", "원산지 구성비"),
    "shares_help": (
        "The share of this lot's mass that comes from each origin, through every transformation.",
        "모든 가공 단계를 거쳐 계산한, 이 로트의 중량 중 각 원산지가 차지하는 비율입니다.",
    ),
    "by_origin_lot": ("By origin lot", "원광 로트별"),
    "by_site": ("By site", "현장별"),
    "by_day": ("By extraction day", "채굴일별"),
    "share": ("Share", "비율"),
    "total": ("Total", "합계"),
    "unknown": ("unknown", "알 수 없음"),
    "assays": ("Assays", "품위 분석"),
    "lab": ("Lab", "분석 기관"),
    "method": ("Method", "분석 방법"),
    "assayed_at": ("Assayed", "분석 일시"),
    "certificate": ("Certificate hash", "성적서 해시"),
    "documents": ("Documents", "문서"),
    "kind": ("Kind", "종류"),
    "document_hash": ("SHA-256 of the file", "파일의 SHA-256"),
    "anchored_by": ("Anchored by", "등록자"),
    "custody": ("Custody", "보관 이력"),
    "when": ("Block", "블록"),
    "event": ("Event", "이벤트"),
    "from": ("From", "보낸 쪽"),
    "to": ("To", "받는 쪽"),
    "action_registered": ("Registered", "등록"),
    "action_transformed": ("Made by a transformation", "가공으로 생성"),
    "action_offered": ("Handover offered", "인계 제안"),
    "action_accepted": ("Handover accepted", "인수 완료"),
    "action_cancelled": ("Handover cancelled", "인계 취소"),
    "none": ("None recorded.", "기록 없음."),
    "transactions": ("Chain records", "블록체인 기록"),
    "transactions_help": (
        "Each transaction behind the facts above, with its block. Check them on any node of chain {chain}.",
        "위 정보의 근거가 되는 트랜잭션과 블록입니다. 체인 {chain}의 어느 노드에서나 확인할 수 있습니다.",
    ),
    "tx": ("Transaction", "트랜잭션"),
    "block": ("Block", "블록"),
    "block_hash": ("Block hash", "블록 해시"),
    "facts": ("Facts recorded", "기록된 정보"),
    "explorer": ("open in the block explorer", "블록 탐색기에서 열기"),
    "raw": ("The same data as JSON", "같은 데이터(JSON)"),
    "indexed_to": ("Database current to block {block}.", "데이터베이스 기준 블록: {block}."),
    "qr": ("QR code of this page", "이 페이지의 QR 코드"),
    "fact_created": ("creation", "생성"),
    "fact_assay": ("assay", "품위 분석"),
    "fact_document": ("document", "문서"),
    "fact_custody": ("custody", "보관 이력"),
    "fact_step": ("transformation", "가공"),
    "fact_correction": ("correction", "정정"),
    "corrections": ("Corrections", "정정"),
    "corrections_help": (
        "A wrong record is never edited: each correction is its own record on the chain, beside the one it corrects.",
        "잘못된 기록은 고쳐 쓰지 않습니다. 각 정정은 정정 대상 기록과 별도로 블록체인에 기록됩니다.",
    ),
    "correction_reason": ("Reason", "정정 사유"),
    "correction_did_not_occur": ("Did not occur: the lot never existed", "발생하지 않음: 존재하지 않은 로트"),
    "correction_incorrect_data": ("Incorrect data: the mass was corrected", "잘못된 데이터: 중량 정정"),
    "adjustment": ("Adjustment", "조정량"),
    "remaining_after": ("Remaining after", "정정 후 잔량"),
    "corrected_by": ("Declared by", "정정 주체"),
    "record": ("Record hash", "기록 해시"),
    "did_not_occur_warning": (
        "This lot was declared never to have occurred. Its record stays, voided.",
        "이 로트는 발생하지 않은 것으로 선언되었습니다. 기록은 무효 상태로 남아 있습니다.",
    ),
    "corrected_warning": (
        "This lot's record was corrected after it was made.",
        "이 로트의 기록은 생성 후 정정되었습니다.",
    ),
    "lineage_corrections": ("Corrected lots in the lineage", "계보 중 정정된 로트"),
    "lineage_corrections_help": (
        "Masses in the picture are as first recorded. Corrections change what remains in a lot, not what "
        "a transformation already took from it, so the shares below stand as recorded.",
        "그림의 중량은 최초 기록값입니다. 정정은 로트의 잔량을 바꿀 뿐 이미 가공에 투입된 중량은 바꾸지 않으므로, "
        "아래 구성비는 기록된 그대로입니다.",
    ),
    "corrections_count": ("corrections: {count}, net {mass}", "정정 {count}건, 합계 {mass}"),
    "legend_corrected": ("corrected after it was recorded", "기록 후 정정됨"),
    "legend_did_not_occur": ("declared not to have occurred", "발생하지 않은 것으로 선언됨"),
    # the lot page's parties, map, documents and passport
    "parties": ("Parties", "관계자"),
    "parties_help": (
        "Who acted on this lot, by the name the system knows for each address; an address it does not know is shown as such.",
        "이 로트에 관여한 주체를 시스템이 아는 이름으로 표시합니다. 알 수 없는 주소는 그렇게 표시됩니다.",
    ),
    "party": ("Name", "이름"),
    "organisation": ("Organisation", "소속 기관"),
    "address": ("Address", "주소"),
    "roles": ("On this lot", "이 로트에서의 역할"),
    "unknown_account": ("unknown account", "알 수 없는 계정"),
    "device_named": ("device {kind} of site {site}", "현장 {site}의 장치 {kind}"),
    "role_creator": ("recorded the lot", "로트 기록"),
    "role_custodian": ("custodian", "보관자"),
    "role_receiver": ("offered the lot", "인계 제안 받음"),
    "role_custodian_now": ("custodian now", "현재 보관자"),
    "role_lab": ("lab (signed an assay)", "분석 기관(분석 서명)"),
    "role_documents": ("anchored documents", "문서 등록"),
    "role_corrections": ("declared corrections", "정정 선언"),
    "role_device": ("device (measured origin loads)", "장치(원광 적재 계량)"),
    "measured_by": ("Measured by", "계량 장치"),
    "map": ("Where it came from", "원산지 지도"),
    "map_help": (
        "Each circle is a face the origin lots came from, its area by the face's share of this lot; drawn from the recorded places of the sites and faces.",
        "각 원은 원광 로트가 채굴된 막장이며, 면적은 이 로트에서 차지하는 비율에 비례합니다. 현장과 막장의 등록된 위치로 그렸습니다.",
    ),
    "map_graph": ("Map of the origin faces of lot {lot_id}", "로트 {lot_id}의 원산지 막장 지도"),
    "map_unplaced": ("Without a recorded place:", "등록된 위치가 없는 곳:"),
    "map_none": (
        "No place is recorded for the sites and faces of this lot's origins.",
        "이 로트의 원산지 현장과 막장에는 등록된 위치가 없습니다.",
    ),
    "place": ("Place", "위치"),
    "no_place": ("not recorded", "등록되지 않음"),
    "lots_count": ("Lots", "로트 수"),
    "origin_groups_help": (
        "{count} origin lots, grouped by site, face and extraction day; open a group to see its lots.",
        "원광 로트 {count}개를 현장, 막장, 채굴일별로 묶었습니다. 묶음을 열면 로트가 보입니다.",
    ),
    "group_summary": ("{lots} lots", "로트 {lots}개"),
    "documents_help": (
        "Every document's SHA-256 is anchored on the chain. Downloading a file needs an API token (none is public); "
        "anyone can check a file they hold against the anchored hash, without a token.",
        "모든 문서의 SHA-256이 블록체인에 등록되어 있습니다. 파일을 내려받으려면 API 토큰이 필요합니다(공개 문서 없음). "
        "가지고 있는 파일이 등록된 해시와 같은지는 누구나 토큰 없이 확인할 수 있습니다.",
    ),
    "access": ("Access", "열람"),
    "download_token": ("download (needs a token)", "내려받기(토큰 필요)"),
    "not_stored": ("hash only: the file is not held here", "해시만 있음: 이 서버에 파일 없음"),
    "verify_file": ("Check a file against the chain", "파일을 블록체인과 대조"),
    "verify_file_button": ("Check the file", "파일 확인"),
    "verify_file_help": (
        "Sends the file to POST {href}, which hashes it (it is not stored) and answers, as JSON, whether and where that hash is anchored.",
        "파일을 POST {href}로 보내면 해시를 계산하여(저장하지 않음) 그 해시가 어디에 등록되었는지 JSON으로 답합니다.",
    ),
    "passport": ("Download the passport (PDF)", "이력 증명서 내려받기(PDF)"),
    "passport_title": ("Lot passport: {lot_id}", "로트 이력 증명서: {lot_id}"),
    "passport_intro": (
        "Printed from the provenance record on the blockchain. Scan the code for the live page, which checks the chain again.",
        "블록체인의 원산지 기록에서 출력했습니다. 코드를 스캔하면 블록체인을 다시 대조하는 실시간 페이지가 열립니다.",
    ),
    "passport_footer": ("Lot {lot_id} · {url}", "로트 {lot_id} · {url}"),
    "passport_lot": ("The lot", "로트"),
    "passport_live": ("The live page", "실시간 페이지"),
    "passport_many_origins": (
        "{count} origin lots: by face and site above; each lot on the live page.",
        "원광 로트 {count}개: 위에 막장별, 현장별로 정리했으며 로트별 내역은 실시간 페이지에 있습니다.",
    ),
    "checked_at_block": ("Checked at block", "검증 기준 블록"),
    "made_in": ("Made by", "생성"),
    "made_by_step": ("transformation #{transform}", "가공 #{transform}"),
    # the home page (GET /)
    "home_title": ("Mineral provenance", "광물 원산지 증명"),
    "home_intro": (
        "Ore lots from the mine face to the buyer, recorded on a blockchain. Enter the lot id from the paperwork to see its provenance.",
        "채굴 막장에서 구매자까지 광석 로트의 이력을 블록체인에 기록합니다. 서류의 로트 ID를 입력하면 원산지를 볼 수 있습니다.",
    ),
    "find_lot": ("Find a lot", "로트 찾기"),
    "lot_id": ("Lot id", "로트 ID"),
    "find": ("Open", "열기"),
    "latest_lots": ("Latest lots", "최근 로트"),
    "latest_shipments": ("Latest shipments", "최근 출하(인수)"),
    "latest_shipments_help": (
        "Lots whose custody passed to another party, newest first.",
        "보관자가 다른 주체로 바뀐 로트입니다(최신순).",
    ),
    "sites": ("Sites", "현장"),
    "sites_help": (
        "Each site's mass balance for {month}, the month of the chain's latest block.",
        "블록체인 최신 블록의 달({month})의 현장별 물질 수지입니다.",
    ),
    "site_month": ("mass balance {month}", "{month} 물질 수지"),
    "lots_total": ("{count} lots", "로트 {count}개"),
    "for_developers": ("For developers and auditors", "개발자와 감사인을 위한 링크"),
    "api_docs": ("The API (OpenAPI, offline)", "API 문서(OpenAPI, 오프라인)"),
    "api_redoc": ("The API as one reference page", "API 참조 문서(한 페이지)"),
    "epcis_events": ("EPCIS 2.0 events", "EPCIS 2.0 이벤트"),
    "nothing_yet": ("Nothing recorded yet.", "아직 기록이 없습니다."),
    "home_not_found": (
        "There is no lot {lot_id} in the record.",
        "기록에 로트 {lot_id}이(가) 없습니다.",
    ),
    # the site page (GET /sites/{site})
    "site_title": ("Site {site}: mass balance, {period}", "현장 {site}: 물질 수지, {period}"),
    "site_intro": (
        "Where the site's ore came from and went in the period, from the records on the blockchain.",
        "기간 중 현장 광석의 유입과 유출을 블록체인 기록으로 정리했습니다.",
    ),
    "site_link": ("mass balance of the site", "현장 물질 수지"),
    "previous_month": ("Previous month", "이전 달"),
    "next_month": ("Next month", "다음 달"),
    "period_span": (
        "{start} to {end} (UTC), blocks {first} to {last}.",
        "{start} ~ {end} (UTC), 블록 {first} ~ {last}.",
    ),
    "period_no_blocks": (
        "{start} to {end} (UTC): no block of the chain falls in this period.",
        "{start} ~ {end} (UTC): 이 기간에 해당하는 블록이 없습니다.",
    ),
    "reconciles": ("The account reconciles", "장부가 맞습니다"),
    "reconciles_detail": (
        "Opening {opening} + in − out + corrections = closing {closing}, as the lots' own records say.",
        "기초 {opening} + 유입 − 유출 + 정정 = 기말 {closing}이며, 로트 기록과 일치합니다.",
    ),
    "not_reconciles": ("The account does not reconcile", "장부가 맞지 않습니다"),
    "not_reconciles_detail": (
        "Opening + in − out + corrections gives {expected}, but the lots hold {closing}: a difference of {difference}.",
        "기초 + 유입 − 유출 + 정정은 {expected}이지만 로트 기록상 재고는 {closing}입니다. 차이: {difference}.",
    ),
    "stock_agrees": (
        "Every stock count agrees with the book within {tolerance}.",
        "모든 재고 실사가 장부와 {tolerance} 이내로 일치합니다.",
    ),
    "stock_disagrees": (
        "A stock count differs from the book by more than {tolerance}.",
        "재고 실사가 장부와 {tolerance} 넘게 차이 납니다.",
    ),
    "problems": ("To look at", "확인이 필요한 사항"),
    "problem_negative": ("{line} is below zero: {mass}.", "{line}이(가) 0보다 작습니다: {mass}."),
    "problem_closing": (
        "Closing stock {closing} differs from opening + in − out + corrections ({expected}) by {difference}.",
        "기말 재고 {closing}이(가) 기초 + 유입 − 유출 + 정정({expected})과 {difference} 차이 납니다.",
    ),
    "problem_count": (
        "Stock count at block {block}: {counted} found, book {book}, variance {variance} ({percent}), beyond {tolerance}.",
        "블록 {block}의 재고 실사: 실사 {counted}, 장부 {book}, 차이 {variance} ({percent}), 허용 오차 {tolerance} 초과.",
    ),
    "problem_processing": (
        "Processing consumed {processed} but made {produced} and lost {lost}: it must conserve mass.",
        "가공 투입 {processed}이(가) 산출 {produced}와 손실 {lost}의 합과 다릅니다. 질량이 보존되어야 합니다.",
    ),
    "mass_flow": ("Mass flow", "물질 흐름"),
    "mass_flow_help": (
        "Ore flows from the left (opening stock and what came in) through the site's stock to the right "
        "(closing stock, shipments, losses). Each band is as wide as the mass it carries.",
        "광석은 왼쪽(기초 재고와 유입)에서 현장 재고를 거쳐 오른쪽(기말 재고, 출하, 손실)으로 흐릅니다. "
        "띠의 폭은 옮겨진 중량에 비례합니다.",
    ),
    "mass_flow_graph": ("Mass flow of site {site}, {period}", "현장 {site}의 물질 흐름, {period}"),
    "mass_flow_empty": ("No stock and no movement in this period.", "이 기간에는 재고도 이동도 없습니다."),
    "mass_flow_loop": (
        "Processing is internal: what it consumes comes back into the stock as its products (the band "
        "below); only its losses leave.",
        "가공은 내부 흐름입니다. 가공에 투입된 중량은 산출물로 재고에 되돌아오며(아래 띠) 손실만 빠져나갑니다.",
    ),
    "processing_internal": (
        "Processing at the site (internal: adds no stock)",
        "현장 내 가공(내부 흐름: 재고를 늘리지 않음)",
    ),
    "unit_t": ("Tonnes", "톤"),
    "unit_kg": ("Kilograms", "킬로그램"),
    "unit_g": ("Grams", "그램"),
    "account": ("Account", "수지 내역"),
    "line": ("Line", "항목"),
    "tonnes": ("Tonnes", "톤"),
    "grams": ("Grams", "그램"),
    "flow_opening_g": ("Opening stock", "기초 재고"),
    "flow_extracted_g": ("Extracted", "채굴"),
    "flow_received_g": ("Received from elsewhere", "외부에서 반입"),
    "flow_shipped_g": ("Shipped (custody left the site)", "출하(보관이 현장을 떠남)"),
    "flow_processed_g": ("Processing: input consumed", "가공: 투입 중량"),
    "flow_produced_g": ("Processing: output produced", "가공: 산출 중량"),
    "flow_lost_g": ("Process losses", "가공 손실"),
    "flow_corrected_g": ("Corrections", "정정"),
    "flow_closing_g": ("Closing stock", "기말 재고"),
    "flow_expected_closing_g": ("Expected closing stock", "계산상 기말 재고"),
    "flow_corrected_in": ("Corrections (+)", "정정(+)"),
    "flow_corrected_out": ("Corrections (−)", "정정(−)"),
    "flow_difference_in": ("Unexplained difference", "설명되지 않은 차이"),
    "flow_difference_out": ("Unexplained difference", "설명되지 않은 차이"),
    "flow_stock": ("Site stock", "현장 재고"),
    "flow_processing": ("Processing", "가공"),
    "shipments": ("{count} lots handed out", "로트 {count}건 인도"),
    "stock_checks": ("Stock counts", "재고 실사"),
    "stock_checks_help": (
        "Each physical count beside the book stock just before it; tolerance {tolerance}.",
        "각 실사 중량을 실사 직전의 장부 재고와 비교합니다. 허용 오차 {tolerance}.",
    ),
    "counted_at": ("Counted", "실사 일시"),
    "counted": ("Counted", "실사"),
    "book": ("Book", "장부"),
    "variance": ("Variance", "차이"),
    "verdict": ("Verdict", "판정"),
    "within": ("within tolerance", "허용 오차 이내"),
    "beyond": ("beyond tolerance", "허용 오차 초과"),
    "no_counts": ("No stock count in this period.", "이 기간에 재고 실사가 없습니다."),
    "raw_site": ("The same account as JSON", "같은 수지 내역(JSON)"),
    # assay certificates: the analytes a buyer reads, committed by the certificate hash the lab signed
    "analytes": ("Analytes", "분석 항목"),
    "analyte": ("Analyte", "항목"),
    "value": ("Value", "값"),
    "analyte_committed": (
        "committed on chain by certificate hash {hash}, signed by the lab",
        "분석 기관이 서명한 성적서 해시 {hash}로 블록체인에 확정됨",
    ),
    "certificate_matches": (
        "The certificate held here hashes to the certificate hash the lab signed on chain; every value below is committed by it.",
        "이 서버가 보관한 성적서의 해시가 분석 기관이 블록체인에 서명한 성적서 해시와 일치합니다. 아래의 모든 값은 그 해시로 확정되어 있습니다.",
    ),
    "certificate_not_held": (
        "Certificate not held here: its analytes cannot be shown.",
        "이 서버에 성적서가 없어 분석 항목을 표시할 수 없습니다.",
    ),
    "certificate_does_not_match": (
        "The certificate held here does not match the chain: its analytes are not shown.",
        "이 서버의 성적서가 블록체인과 일치하지 않아 분석 항목을 표시하지 않습니다.",
    ),
    "certificate_not_a_certificate": (
        "The file held under this hash is not an analyte certificate of this lot.",
        "이 해시로 보관된 파일은 이 로트의 분석 성적서가 아닙니다.",
    ),
    "analyte_total_moisture": ("Total moisture", "전수분"),
    "analyte_moisture": ("Moisture (analysis sample)", "수분(분석 시료)"),
    "analyte_ash": ("Ash", "회분"),
    "analyte_volatile_matter": ("Volatile matter", "휘발분"),
    "analyte_fixed_carbon": ("Fixed carbon", "고정탄소"),
    "analyte_total_sulphur": ("Total sulphur", "전유황"),
    "analyte_gross_calorific_value": ("Gross calorific value", "총발열량"),
    "analyte_net_calorific_value": ("Net calorific value", "순발열량"),
}

NOT_FOUND_TITLE = "Lot not found · 로트를 찾을 수 없음"
NOT_FOUND_TEXT = (
    "There is no lot {lot_id} in the record. Check the code on the paperwork, or scan the QR code again.",
    "기록에 로트 {lot_id}이(가) 없습니다. 서류의 코드를 확인하거나 QR 코드를 다시 스캔해 주십시오.",
)
MALFORMED_TEXT = (
    "This is not a lot id: ids are 1 to 32 letters, digits and . _ : / -",
    "올바른 로트 ID가 아닙니다: ID는 영문자, 숫자, . _ : / - 로 된 1~32자입니다.",
)


SITE_NOT_FOUND_TITLE = "Site not found · 현장을 찾을 수 없음"
SITE_NOT_FOUND_TEXT = (
    "site: there is no site {site} in the record.",
    "site: 기록에 현장 {site}이(가) 없습니다.",
)
BAD_REQUEST_TITLE = "Wrong address · 잘못된 주소"
BAD_REQUEST_HELP: dict[str, str] = {
    "period": "period: 기간은 2026-11(월), 2026-11-03(일), 2026-W45(주), 2026(연) 형식이어야 합니다.",
    "tolerance": "tolerance: 허용 오차는 0.5% 같은 0~100 사이의 백분율이어야 합니다.",
    "site": "site: 현장 라벨은 영문자, 숫자, . _ : / - 로 된 1~32자입니다.",
}


def choose_lang(asked: str | None, accept_language: str | None) -> Lang:
    """`?lang=` if it names one of ours, else the Accept-Language entry we can serve with the highest
    q (the first of equals), else English."""
    if asked in LANGS:
        return "ko" if asked == "ko" else "en"
    best: tuple[float, int, Lang] | None = None
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in LANGS:
            continue
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality <= 0:
            continue
        lang: Lang = "ko" if primary == "ko" else "en"
        candidate = (-quality, position, lang)
        if best is None or candidate < best:
            best = candidate
    return DEFAULT_LANG if best is None else best[2]


def other(lang: Lang) -> Lang:
    return "ko" if lang == "en" else "en"


def translator(lang: Lang) -> Callable[..., str]:
    """`t(key, **values)`: the phrase in `lang`, with `values` filled in (escaped by the template)."""
    index = LANGS.index(lang)

    def t(key: str, default: str | None = None, **values: object) -> str:
        """`default` (if given) stands in for a key we have no words for, e.g. a new status."""
        if key not in WORDS and default is not None:
            return default
        text = WORDS[key][index]
        return text.format(**values) if values else text

    return t
